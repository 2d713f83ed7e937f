import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RunspaceContext } from 'runspaces';

/**
 * Shared-memory gates for tests: a runspace blocks on a gate until the test
 * opens it, and reports that it started, so tests wait on real events instead
 * of sleeping.
 */
export class Gate {
  readonly buffer = new SharedArrayBuffer(8);
  readonly #cells = new Int32Array(this.buffer);

  /** Lets every runspace blocked on this gate continue. */
  open(): void {
    Atomics.store(this.#cells, 0, 1);
    Atomics.notify(this.#cells, 0);
  }

  /** How many calls have reached the gate. */
  get arrived(): number {
    return Atomics.load(this.#cells, 1);
  }

  /** Resolves once `count` calls have reached the gate. */
  async arrivals(count: number): Promise<void> {
    for (;;) {
      const seen = Atomics.load(this.#cells, 1);
      if (seen >= count) return;
      const result = Atomics.waitAsync(this.#cells, 1, seen, 5_000);
      if (result.async) await result.value;
    }
  }
}

/**
 * A script block that reports its arrival at the gate, then blocks its
 * runspace until the gate opens. Pass the gate as `using: { gate: gate.buffer }`.
 */
export const blockOnGate = (ctx: RunspaceContext<{ gate: SharedArrayBuffer }>): number => {
  const cells = new Int32Array(ctx.using.gate);
  Atomics.add(cells, 1, 1);
  Atomics.notify(cells, 1);
  Atomics.wait(cells, 0, 0);
  return ctx.runspaceId;
};

/** `blockOnGate` that returns its argument once the gate opens: a call or job whose result says which it was. */
export const blockOnGateThenReturn = <T>(ctx: RunspaceContext<{ gate: SharedArrayBuffer }>, value: T): T => {
  const cells = new Int32Array(ctx.using.gate);
  Atomics.add(cells, 1, 1);
  Atomics.notify(cells, 1);
  Atomics.wait(cells, 0, 0);
  return value;
};

/**
 * `blockOnGateThenReturn` that awaits the gate instead of blocking: its
 * runspace stays free to run other calls meanwhile (a pool's `concurrency`).
 */
export const awaitGateThenReturn = async <T>(ctx: RunspaceContext<{ gate: SharedArrayBuffer }>, value: T): Promise<T> => {
  const cells = new Int32Array(ctx.using.gate);
  Atomics.add(cells, 1, 1);
  Atomics.notify(cells, 1);
  const waiting = Atomics.waitAsync(cells, 0, 0);
  if (waiting.async) await waiting.value;
  return value;
};

/**
 * A script block that reports its arrival at the gate, then spins forever,
 * ignoring every signal: only terminating its runspace stops it.
 */
export const spinAfterArrival = (ctx: RunspaceContext<{ gate: SharedArrayBuffer }>): never => {
  const cells = new Int32Array(ctx.using.gate);
  Atomics.add(cells, 1, 1);
  Atomics.notify(cells, 1);
  for (;;);
};

/** Resolves with the first emission of `event`. */
export function once<T>(emitter: { once(event: string, listener: (value: T) => void): unknown }, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, resolve));
}

/** Every file under `dir` (recursively) whose name ends with `ext`. */
export function filesUnder(dir: string, ext: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...filesUnder(path, ext));
    else if (path.endsWith(ext)) found.push(path);
  }
  return found;
}
