/**
 * The live progress display of a benchmark: one line rewritten in place on a
 * terminal; on a pipe or in CI, one line per finished run instead.
 *
 * @module
 */

import type { WriteStream } from 'node:tty';
import type { ContentionProgress } from './contention.js';
import { formatNs, formatRate } from './contention-report.js';

export class ProgressLine {
  readonly #stream: NodeJS.WriteStream | WriteStream;
  readonly #tty: boolean;
  #lastRun = '';
  #shown = false;

  constructor(stream: NodeJS.WriteStream) {
    this.#stream = stream;
    this.#tty = stream.isTTY === true;
  }

  update = (p: ContentionProgress): void => {
    const fraction = p.durationMs === 0 ? 1 : Math.min(1, p.elapsedMs / p.durationMs);
    const width = 20;
    const filled = Math.round(fraction * width);
    const rate = p.elapsedMs > 0 ? formatRate(p.acquisitions / (p.elapsedMs / 1000)) : '';
    const what = `point ${p.point}/${p.points} ${p.lock} x${p.threads} critical ${formatNs(p.criticalNs)} run ${p.repeat}/${p.repeats}`;
    if (this.#tty) {
      this.#stream.write(`\r\x1b[2K${what} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${rate}`);
      this.#shown = true;
      return;
    }
    if (fraction >= 1 && this.#lastRun !== what) {
      this.#lastRun = what;
      this.#stream.write(`${what}: ${rate}\n`);
    }
  };

  done(): void {
    if (this.#tty && this.#shown) this.#stream.write('\r\x1b[2K');
  }
}
