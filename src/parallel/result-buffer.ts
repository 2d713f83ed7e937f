/**
 * Results of a parallel loop waiting for their consumer, in completion order
 * or in input order.
 *
 * Results arrive a chunk at a time: a segment of consecutive item indices,
 * some of which may have failed (they hold no output). Keeping segments
 * whole, instead of one entry per item, is what makes reordering cheap: in
 * input order, the buffer waits for the segment that starts at the next
 * index to deliver, then walks it.
 *
 * @module
 */

import { Fifo } from '../util/fifo.js';

interface Segment {
  readonly first: number;
  readonly values: readonly unknown[];
  /** Positions (in `values`) of items that produced no output. */
  readonly failed: ReadonlySet<number> | undefined;
  /** Items of this range; `values` may be shorter when the rest never ran. */
  readonly length: number;
  pos: number;
}

export class ResultBuffer {
  readonly #ordered: boolean;
  readonly #arrived = new Fifo<Segment>();
  readonly #waiting = new Map<number, Segment>();
  #nextIndex = 0;
  #current: Segment | undefined;
  #size = 0;

  constructor(ordered: boolean) {
    this.#ordered = ordered;
  }

  /** Outputs held, deliverable or waiting for an earlier item. */
  get size(): number {
    return this.#size;
  }

  /** Adds the outcome of items `first ..< first + length`. */
  add(first: number, values: readonly unknown[], failed: ReadonlySet<number> | undefined, length: number): void {
    // An empty range would take the place of the real segment that starts at the same index.
    if (length === 0) return;
    const segment: Segment = { first, values, failed, length, pos: 0 };
    this.#size += values.length - (failed?.size ?? 0);
    if (this.#ordered) this.#waiting.set(first, segment);
    else this.#arrived.push(segment);
  }

  /** The loop is over: what is held is delivered, in order, around the items that never ran. */
  release(): void {
    if (!this.#ordered) return;
    const rest = [...this.#waiting.values()].sort((a, b) => a.first - b.first);
    this.#waiting.clear();
    for (const segment of rest) this.#arrived.push(segment);
  }

  /** The next deliverable output, or `undefined` with `found` false when there is none yet. */
  shift(): { found: boolean; value: unknown } {
    for (;;) {
      let segment = this.#current;
      if (segment === undefined) {
        segment = this.#nextSegment();
        if (segment === undefined) return NOTHING;
        this.#current = segment;
      }
      const { values, failed } = segment;
      while (segment.pos < values.length) {
        const pos = segment.pos++;
        if (failed !== undefined && failed.has(pos)) continue;
        this.#size--;
        return { found: true, value: values[pos] };
      }
      this.#current = undefined;
    }
  }

  #nextSegment(): Segment | undefined {
    if (this.#ordered && this.#waiting.size > 0) {
      const segment = this.#waiting.get(this.#nextIndex);
      if (segment !== undefined) {
        this.#waiting.delete(this.#nextIndex);
        this.#nextIndex += segment.length;
        return segment;
      }
    }
    return this.#arrived.shift();
  }
}

const NOTHING = Object.freeze({ found: false, value: undefined });
