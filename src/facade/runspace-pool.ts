/**
 * `RunspacePool`, the class users import: PowerShell's `RunspacePool` for
 * Node. A facade above both layers: it composes the pool core (`pool/`:
 * runspaces, scheduling, supervision) with parallel loops, thread jobs and
 * the job table (`parallel/`), which use the core through a narrow view.
 *
 * @module
 */

import type { ParallelPool } from './parallel-pool.js';
import { EventEmitter } from 'node:events';
import { InvalidArgumentError, PoolClosedError, shown } from '../errors.js';
import type { InvokeOptions, InvokeOptionsArgument, ModuleFunction, ScriptBlock } from '../pool/invocation.js';
import type { RunspacePoolOptions } from '../pool/options.js';
import { PoolCore } from '../pool/pool-core.js';
import type { AcquireOptions, RunspacePoolEvents, RunspacePoolState } from '../pool/pool-events.js';
import type { PoolStats } from '../pool/pool-stats.js';
import type { Runspace } from '../pool/runspace.js';
import type { StreamRecord } from '../protocol/stream-records.js';
import type { LoopInput } from '../parallel/input-source.js';
import { JobTable } from '../parallel/job-table.js';
import type { Job, JobFilter } from '../parallel/job.js';
import { normalizeLoopOptions, type ForEachParallelOptions, type LoopFunction } from '../parallel/options.js';
import { ParallelJob } from '../parallel/parallel-job.js';
import { ParallelLoop } from '../parallel/parallel-loop.js';
import { ThreadJob, type JobScriptBlock, type ThreadJobOptions } from '../parallel/thread-job.js';
import { asArgumentError, readOptions } from '../util/options.js';

export type { AcquireOptions, PoolStateChange, RunspaceClosedInfo, RunspacePoolEvents, RunspacePoolState } from '../pool/pool-events.js';

/**
 * A pool of runspaces: worker threads, each with its own session state that
 * persists between calls.
 *
 * Guarantees: every accepted call settles exactly once (a result, its error,
 * a cancellation, `RunspaceBrokenError` when its runspace died, or
 * `PoolClosedError` when the pool closed before it started). A runspace that
 * dies is replaced. A cancelled call is asked to stop through `ctx.signal`;
 * only one that ignores it past `cancelGracePeriod` costs its runspace.
 * Waiting calls are served first come, first served.
 *
 * @example
 * ```ts
 * import { RunspacePool } from 'runspaces';
 *
 * await using pool = await RunspacePool.open({ maxRunspaces: 4 });
 * const sum = await pool.invoke((ctx, a: number, b: number) => a + b, { args: [1, 2] });
 * ```
 */
export class RunspacePool extends EventEmitter<RunspacePoolEvents> implements AsyncDisposable, ParallelPool {
  readonly #core: PoolCore;
  readonly #jobs: JobTable;

  /** Opens a pool and waits until its `minRunspaces` are ready. */
  static async open(options: RunspacePoolOptions = {}): Promise<RunspacePool> {
    const pool = new RunspacePool(options);
    await pool.open();
    return pool;
  }

  /** Creates a pool in state `BeforeOpen`; call `open()`. Validates options now. */
  constructor(options: RunspacePoolOptions = {}) {
    super();
    // The core raises the events; users subscribe here.
    this.#core = new PoolCore(options, (event, ...args) => {
      (this.emit as (event: string, ...args: unknown[]) => boolean)(event, ...args);
    });
    this.#jobs = new JobTable({ acquire: (opts) => this.#core.acquire(opts) }, this.#core.jobThrottleLimit);
  }

  get state(): RunspacePoolState {
    return this.#core.state;
  }

  /**
   * Calls and `acquire` requests waiting for a runspace now. With `maxQueue`,
   * a call that would make the calls waiting exceed it is refused.
   *
   * @example
   * ```ts
   * await using pool = await RunspacePool.open({ maxRunspaces: 2, maxQueue: 100 });
   * if (pool.queueSize >= 100) await new Promise<void>((resolve) => pool.once('drain', () => resolve()));
   * ```
   */
  get queueSize(): number {
    return this.#core.queueSize;
  }

  /** Opens `minRunspaces` runspaces. Idempotent while opening or opened. */
  open(): Promise<void> {
    return this.#core.open();
  }

  /**
   * Runs an exported function of a real module (closures, imports and all),
   * called as `fn(ctx, ...args)`.
   *
   * @example
   * ```ts
   * await pool.invoke({ module: new URL('./tasks.js', import.meta.url), export: 'resize' }, { args: [file] });
   * ```
   */
  invoke<R = unknown>(target: ModuleFunction, options?: InvokeOptions): Promise<R>;
  // The script-block form comes last: a call that matches no overload is reported against it.
  /**
   * Runs a script block in some runspace of the pool and returns its result.
   *
   * The function is shipped by its source and compiled in the runspace: it
   * sees only `ctx` and its `args`, never the caller's variables (pass those
   * as `using` or `args`). Use `ctx.session` for state that should persist in
   * that runspace.
   *
   * @example
   * ```ts
   * const area = await pool.invoke((ctx, r: number) => ctx.using.pi * r * r, {
   *   args: [2], using: { pi: Math.PI }, timeout: 5_000,
   * });
   * ```
   */
  invoke<A extends readonly unknown[], R, U extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>>(
    fn: ScriptBlock<A, R, U>,
    ...options: InvokeOptionsArgument<A, U>
  ): Promise<Awaited<R>>;
  invoke(target: Function | ModuleFunction, options: InvokeOptions<readonly unknown[], unknown> = {}): Promise<unknown> {
    return this.#core.invoke(target, options);
  }

  /**
   * Takes one runspace out of the pool for your exclusive use, waiting in line
   * when all are busy. Release it with `release()` or `await using`.
   *
   * @example
   * ```ts
   * await using rs = await pool.acquire({ timeout: 10_000 });
   * await rs.invoke(async (ctx) => ctx.session.set('model', (await import('./model.js')).loadModel()));
   * ```
   */
  acquire(options: AcquireOptions = {}): Promise<Runspace> {
    return this.#core.acquire(options);
  }

  /** Runs an exported function of a module for every item: `fn(item, ctx)`, or `fn(item)` with `context: false`. */
  forEachParallel<R = unknown>(
    input: LoopInput<unknown>,
    fn: ModuleFunction,
    options?: ForEachParallelOptions & { readonly asJob?: false },
  ): ParallelLoop<R>;
  /** Runs the loop as a job with one child job per item (`ForEach-Object -Parallel -AsJob`). */
  forEachParallel<T, R, U extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>>(
    input: LoopInput<T>,
    fn: LoopFunction<T, R, U>,
    options: Omit<ForEachParallelOptions<U>, 'timeout'> & { readonly asJob: true; readonly name?: string; readonly timeout?: never },
  ): ParallelJob<Awaited<R>>;
  // The script-block loop comes last: a call that matches no overload is reported against it.
  /**
   * Runs `fn(item, ctx)` for every item of `input` across the pool's
   * runspaces: PowerShell's `ForEach-Object -Parallel`. Returns an async
   * iterable of outputs (see {@link ParallelLoop}); input is pulled only as
   * fast as items are processed. Quick items travel several per message.
   *
   * @example
   * ```ts
   * // The script block sees only its item and ctx: it imports the code it needs.
   * for await (const hash of pool.forEachParallel(files, async (file, ctx) => (await import('./hashing.js')).hashFile(file, ctx.using.algorithm), {
   *   using: { algorithm: 'sha256' }, throttleLimit: 4, timeout: 60_000,
   * })) console.log(hash);
   * const squares = await pool.forEachParallel([1, 2, 3], (n: number) => n * n, { ordered: true }).toArray();
   * ```
   */
  forEachParallel<T, R, U extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>>(
    input: LoopInput<T>,
    fn: LoopFunction<T, R, U>,
    options?: ForEachParallelOptions<U> & { readonly asJob?: false },
  ): ParallelLoop<Awaited<R>>;
  forEachParallel(
    input: LoopInput<unknown>,
    fn: Function | ModuleFunction,
    options: ForEachParallelOptions<unknown> & { readonly asJob?: boolean; readonly name?: string } = {},
  ): ParallelLoop<unknown> | ParallelJob<unknown> {
    const { asJob, name } = readOptions(options, ['asJob', 'name']);
    const normalized = normalizeLoopOptions(options, asJob === true);
    const pool = this.#core.loopPool;
    if (asJob !== true) return new ParallelLoop(pool, input, fn, normalized, this.#emitRecord);
    if (name !== undefined && typeof name !== 'string') throw new InvalidArgumentError('name', 'expected a string');
    const job = new ParallelJob<unknown>(pool, input, fn, normalized, name, this.#jobs.remove);
    this.#jobs.add(job);
    return job;
  }

  /**
   * Starts a thread job: `fn(ctx, ...args)` runs in the background in one
   * runspace, and the returned {@link ThreadJob} tracks its state and keeps
   * its output and streams until received. At most `jobThrottleLimit` thread
   * jobs run at once; the others wait as `NotStarted`.
   *
   * @example
   * ```ts
   * const job = pool.startThreadJob(async (ctx, url: string) => (await import('./downloads.js')).download(url), { args: [url], name: 'download' });
   * if (await job.wait({ timeout: 30_000 })) console.log(job.receive().output);
   * else await job.stop();
   * ```
   */
  startThreadJob<A extends readonly unknown[], R, U extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>>(
    fn: JobScriptBlock<A, R, U>,
    options?: ThreadJobOptions<A, U>,
  ): ThreadJob<Awaited<R>>;
  startThreadJob<R = unknown>(fn: ModuleFunction, options?: ThreadJobOptions): ThreadJob<R>;
  startThreadJob(fn: Function | ModuleFunction, options: ThreadJobOptions<readonly unknown[]> = {}): ThreadJob<unknown> {
    this.#core.assertAccepting('start a thread job');
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options', 'expected an options object');
    let job: ThreadJob<unknown>;
    try {
      job = new ThreadJob<unknown>(fn, options, this.#jobs.remove);
    } catch (error) {
      throw asArgumentError(error, 'options');
    }
    this.#jobs.add(job);
    this.#jobs.start(job);
    return job;
  }

  /**
   * The pool's jobs not yet removed, oldest first (PowerShell's `Get-Job`),
   * those matching every filter given: `name` and `state` exactly, `command`
   * as a substring of the job's `command` or a `RegExp` it matches.
   *
   * @example
   * ```ts
   * const downloads = pool.getJobs({ command: /download/, state: 'Running' });
   * ```
   */
  getJobs(filter: JobFilter = {}): Job<unknown>[] {
    const { name, state, command } = readOptions(filter, ['name', 'state', 'command'], 'filter') as JobFilter;
    if (command !== undefined && typeof command !== 'string' && !(command instanceof RegExp)) {
      throw new InvalidArgumentError('filter.command', `expected a string or a RegExp, got ${shown(command)}`);
    }
    const commandMatches = (job: Job<unknown>): boolean =>
      command === undefined || (typeof command === 'string' ? job.command.includes(command) : new RegExp(command.source, command.flags.replace(/[gy]/g, '')).test(job.command));
    return this.#jobs.list().filter((job) => (name === undefined || job.name === name) && (state === undefined || job.state === state) && commandMatches(job));
  }

  readonly #emitRecord = (record: StreamRecord): void => {
    this.emit('record', record);
  };

  /**
   * Sets the maximum. False (and no change) when `n` is not an integer >=
   * max(1, minRunspaces) or the pool is shutting down; `InvalidArgumentError`
   * above 1024 runspaces.
   */
  setMaxRunspaces(n: number): boolean {
    return this.#core.setMaxRunspaces(n);
  }

  /**
   * Sets the minimum. False (and no change) when `n` is not an integer in
   * 0..maxRunspaces or the pool is shutting down. Runspaces it needs open at
   * most 16 per turn of the event loop.
   */
  setMinRunspaces(n: number): boolean {
    return this.#core.setMinRunspaces(n);
  }

  getMaxRunspaces(): number {
    return this.#core.getMaxRunspaces();
  }

  getMinRunspaces(): number {
    return this.#core.getMinRunspaces();
  }

  /** How many more calls could start now without waiting: maximum minus runspaces busy or acquired. */
  getAvailableRunspaces(): number {
    return this.#core.getAvailableRunspaces();
  }

  /** A snapshot of the pool's load and latencies. */
  stats(): PoolStats {
    return this.#core.stats();
  }

  /**
   * Closes the pool gracefully: work already running (including calls on
   * acquired runspaces) finishes; work still waiting for a runspace is
   * rejected with `PoolClosedError`; then every runspace is closed.
   */
  close(): Promise<void> {
    return this.#core.close(this.#closeJobs);
  }

  /** Ends the pool at once: running work is stopped and rejected with `PoolClosedError`. */
  destroy(): Promise<void> {
    return this.#core.destroy(this.#closeJobs);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  readonly #closeJobs = (): void => this.#jobs.close(new PoolClosedError('The pool closed before this job started.'));
}
