/**
 * A process-wide pool for `parallel()`, opened on first use: no runspace
 * kept while idle, so a script that used it exits on its own.
 *
 * @module
 */

import { RunspacePool } from './runspace-pool.js';
import type { LoopInput } from '../parallel/input-source.js';
import type { ForEachParallelOptions, LoopFunction } from '../parallel/options.js';
import type { ParallelLoop } from '../parallel/parallel-loop.js';

let shared: RunspacePool | undefined;

/**
 * The shared pool behind `parallel()`: up to `os.availableParallelism()`
 * runspaces, none kept once idle for 10 seconds. Reopened if it was closed.
 *
 * @example
 * ```ts
 * const shared = defaultPool();   // the pool behind parallel()
 * console.log(shared.state, await shared.invoke((ctx) => ctx.runspaceId > 0));
 * ```
 */
export function defaultPool(): RunspacePool {
  if (shared === undefined || shared.state !== 'Opened') {
    shared = new RunspacePool({ minRunspaces: 0, idleTimeout: 10_000 });
    void shared.open();
  }
  return shared;
}

/**
 * `forEachParallel` on the shared default pool.
 *
 * @example
 * ```ts
 * import { parallel } from 'runspaces';
 *
 * const lengths = await parallel(['a', 'bb', 'ccc'], (s: string) => s.length, { ordered: true }).toArray();
 * ```
 */
export function parallel<T, R, U extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>>(
  input: LoopInput<T>,
  fn: LoopFunction<T, R, U>,
  options?: ForEachParallelOptions<U>,
): ParallelLoop<Awaited<R>> {
  return defaultPool().forEachParallel(input, fn, { ...options, asJob: false });
}
