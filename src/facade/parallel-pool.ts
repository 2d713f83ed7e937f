/**
 * What a local `RunspacePool` and a `ClusterPool` have in common, as one
 * type: code written against it runs on either, and moves between one
 * machine and many by changing how the pool is opened. (A union of the two
 * classes cannot be called in TypeScript: their overloads differ.)
 *
 * @module
 */

import type { ParallelItemError } from '../errors.js';
import type { LoopInput } from '../parallel/input-source.js';
import type { Job } from '../parallel/job.js';
import type { ForEachParallelOptions, LoopFunction } from '../parallel/options.js';
import type { ThreadJobOptions } from '../parallel/thread-job.js';
import type { InvokeOptions, ModuleFunction, ScriptBlock } from '../pool/invocation.js';

/** Options of `invoke` that mean the same on both pools. */
export type ParallelPoolInvokeOptions<A extends readonly unknown[] = readonly unknown[], U = Readonly<Record<string, unknown>>> =
  Pick<InvokeOptions<A, U>, 'args' | 'using' | 'timeout' | 'signal' | 'baseUrl' | 'onRecord'>;

/** Options of `forEachParallel` that mean the same on both pools. */
export type ParallelPoolLoopOptions<U = Readonly<Record<string, unknown>>> = Pick<
  ForEachParallelOptions<U>,
  'throttleLimit' | 'using' | 'timeout' | 'signal' | 'ordered' | 'useNewRunspace' | 'errorAction' | 'onRecord' | 'onProgress' | 'highWaterMark' | 'baseUrl'
>;

/** Options of `startThreadJob` that mean the same on both pools. */
export type ParallelPoolThreadJobOptions<A extends readonly unknown[] = readonly unknown[], U = Readonly<Record<string, unknown>>> =
  Pick<ThreadJobOptions<A, U>, 'args' | 'using' | 'name' | 'baseUrl'>;

/** A running loop of either pool: iterate it for outputs as they come, or await it for all of them. */
export interface ParallelPoolLoop<R> extends AsyncIterable<R>, PromiseLike<R[]> {
  /** Items that failed so far, each with its `index`. */
  readonly errors: readonly ParallelItemError[];
  /** Items finished so far, failed or not. */
  readonly completed: number;
  toArray(): Promise<R[]>;
}

/**
 * A pool of either kind: `RunspacePool` (this machine) or `ClusterPool`
 * (worker nodes through Redis).
 *
 * @example
 * ```ts
 * import { ClusterPool, RunspacePool, type ParallelPool } from 'runspaces';
 *
 * async function thumbnails(pool: ParallelPool, files: string[]): Promise<number[]> {
 *   return pool.forEachParallel(files, async (file: string) => (await import('node:fs/promises')).stat(file).then((s) => s.size), { ordered: true, throttleLimit: 8 });
 * }
 * const pool: ParallelPool = process.env.REDIS_URL ? await ClusterPool.open({ redis: process.env.REDIS_URL }) : await RunspacePool.open();
 * ```
 */
export interface ParallelPool {
  invoke<R = unknown>(fn: ModuleFunction, options?: ParallelPoolInvokeOptions): Promise<R>;
  invoke<A extends readonly unknown[], R, U extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>>(
    fn: ScriptBlock<A, R, U>,
    options?: ParallelPoolInvokeOptions<A, U>,
  ): Promise<Awaited<R>>;
  forEachParallel<R = unknown>(input: LoopInput<unknown>, fn: ModuleFunction, options?: ParallelPoolLoopOptions): ParallelPoolLoop<R>;
  forEachParallel<T, R, U extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>>(
    input: LoopInput<T>,
    fn: LoopFunction<T, R, U>,
    options?: ParallelPoolLoopOptions<U>,
  ): ParallelPoolLoop<Awaited<R>>;
  startThreadJob<R = unknown>(fn: ModuleFunction, options?: ParallelPoolThreadJobOptions): Job<R>;
  startThreadJob<A extends readonly unknown[], R, U extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>>(
    fn: ScriptBlock<A, R, U>,
    options?: ParallelPoolThreadJobOptions<A, U>,
  ): Job<Awaited<R>>;
  /** The jobs started from this pool and not removed, oldest first. */
  getJobs(): Job<unknown>[];
  close(): Promise<void>;
}
