/**
 * The runspace pool: PowerShell's `RunspacePool` for Node.
 *
 * Scheduling in one paragraph: calls and acquire requests wait in one
 * first-in first-out line. A free runspace is taken from the idle stack (most
 * recently used first); when none is free and the pool is below its maximum,
 * a new runspace is opened (growth is lazy). Quick calls go several per
 * message, and a runspace busy with quick work may be handed the next batch
 * before it finishes (see `batching.ts`). A runspace that stays idle past
 * `idleTimeout` is closed while the pool is above its minimum. An acquired
 * runspace is outside all of this: nothing else is scheduled on it and no
 * timer closes it.
 *
 * @module
 */

import { EventEmitter } from 'node:events';
import {
  InvalidArgumentError,
  InvalidPoolStateError,
  OperationCancelledError,
  PoolClosedError,
  RunspaceBrokenError,
  RunspaceOpenError,
  TimeoutError,
} from '../errors.js';
import { deserializeError } from '../protocol/error-codec.js';
import { recoverAbandoned } from '../sync/shared-cells.js';
import type { AffinityLink } from '../affinity/link.js';
import type { CancelKind, ChunkOutcome, WireResult } from '../protocol/messages.js';
import type { StreamRecord } from '../protocol/stream-records.js';
import { AcquireRequest } from './acquire-request.js';
import { fairShare, PIPELINE_LIMIT_NS, TARGET_BATCH_NS } from './batching.js';
import { Fifo } from './fifo.js';
import { IdleStack } from './idle-stack.js';
import { buildTaskSpec, variableSpec, type InvokeOptions, type ModuleFunction, type ScriptBlock } from './invocation.js';
import { assertTimeMs, isValidCount, normalizePoolOptions, type NormalizedPoolOptions, type RunspacePoolOptions } from './options.js';
import { StatsRecorder, type PoolStats } from './pool-stats.js';
import { Runspace, type RunspaceOwner } from './runspace.js';
import { RunspaceHost, type ExitInfo, type HostEvents } from './runspace-host.js';
import { callerFileUrl, scriptFor } from './script-registry.js';
import { Task, type TaskSpec } from './task.js';
import { poolInternals, type PoolInternals, type SubmitOptions } from './pool-internals.js';
// The parallel layer is built on the pool; the pool only hands it the calls.
// These modules import nothing from this file at run time, so no cycle forms.
import type { LoopInput } from '../parallel/input-source.js';
import { JobTable } from '../parallel/job-table.js';
import type { Job, JobState } from '../parallel/job.js';
import { normalizeLoopOptions, type ForEachParallelOptions, type LoopFunction } from '../parallel/options.js';
import { ParallelJob } from '../parallel/parallel-job.js';
import { ParallelLoop } from '../parallel/parallel-loop.js';
import { ThreadJob, type JobScriptBlock, type ThreadJobOptions } from '../parallel/thread-job.js';

/** The states of a pool, as PowerShell's `RunspacePoolState`. */
export type RunspacePoolState = 'BeforeOpen' | 'Opening' | 'Opened' | 'Closing' | 'Closed' | 'Broken';

export interface PoolStateChange {
  readonly previous: RunspacePoolState;
  readonly state: RunspacePoolState;
  /** Why the pool broke, for `Broken`. */
  readonly reason?: Error;
}

export interface RunspaceClosedInfo {
  readonly runspaceId: number;
  readonly exitCode: number;
  readonly reason: string;
  /** True when the pool closed it (trimmed, recycled, pool closing); false when it died. */
  readonly intended: boolean;
}

/** Events of a {@link RunspacePool}. */
export interface RunspacePoolEvents {
  stateChanged: [change: PoolStateChange];
  /** Stream records of calls made without `onRecord`, and of startup scripts. */
  record: [record: StreamRecord];
  runspaceOpened: [runspaceId: number];
  runspaceClosed: [info: RunspaceClosedInfo];
  /** A module or startup script failed in a runspace (with `throwOnOpenError: false`, it serves anyway). */
  runspaceOpenError: [error: RunspaceOpenError];
}

/** Options of `pool.acquire()`. */
export interface AcquireOptions {
  readonly signal?: AbortSignal;
  /** Milliseconds to wait for a runspace before rejecting with `TimeoutError`. */
  readonly timeout?: number;
}

type Waiting = Task | AcquireRequest;

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
export class RunspacePool extends EventEmitter<RunspacePoolEvents> implements AsyncDisposable {
  readonly #options: NormalizedPoolOptions;
  readonly #startup;
  #state: RunspacePoolState = 'BeforeOpen';
  readonly #hosts = new Set<RunspaceHost>();
  readonly #idle = new IdleStack<RunspaceHost>();
  readonly #waiting = new Fifo<Waiting>();
  #waitingCount = 0;
  #opening = 0;
  readonly #handles = new Map<RunspaceHost, Runspace>();
  /** Acquired runspaces whose handle was released while calls were still running. */
  readonly #releasing = new Set<RunspaceHost>();
  readonly #stats = new StatsRecorder();
  /** Why a runspace died, for calls made later through its `Runspace` handle. */
  readonly #brokenErrors = new WeakMap<RunspaceHost, Error>();
  #pumping = false;
  #destroying = false;
  #openPromise: Promise<void> | undefined;
  #closePromise: Promise<void> | undefined;
  #drained: (() => void) | undefined;
  #brokenReason: Error | undefined;
  readonly #owner: RunspaceOwner;
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
    this.#options = normalizePoolOptions(options, callerFileUrl);
    this.#startup = this.#options.startup.map((fn) => scriptFor(fn, undefined).definition);
    this.#owner = {
      invokePinned: (host, target, opts) => this.#invokePinned(host, target, opts),
      getVariable: (host, name) => this.#pinned(host, variableSpec({ kind: 'getVariable', name: String(name) }), {}),
      setVariable: async (host, name, value) => {
        await this.#pinned(host, variableSpec({ kind: 'setVariable', name: String(name), value }), {});
      },
      release: (host) => this.#release(host),
    };
    this.#jobs = new JobTable({ acquire: (opts) => this.acquire(opts) }, this.#options.jobThrottleLimit);
  }

  get state(): RunspacePoolState {
    return this.#state;
  }

  /** Opens `minRunspaces` runspaces. Idempotent while opening or opened. */
  open(): Promise<void> {
    if (this.#openPromise && (this.#state === 'Opening' || this.#state === 'Opened')) return this.#openPromise;
    if (this.#state !== 'BeforeOpen') {
      return Promise.reject(new InvalidPoolStateError(this.#state, 'BeforeOpen', 'open the pool'));
    }
    this.#setState('Opening');
    this.#openPromise = this.#openRunspaces();
    return this.#openPromise;
  }

  async #openRunspaces(): Promise<void> {
    const hosts: RunspaceHost[] = [];
    for (let i = 0; i < this.#options.minRunspaces; i++) hosts.push(this.#spawn());
    await Promise.all(hosts.map((host) => host.opened));
    if (this.#state !== 'Opening') {
      throw this.#brokenReason ?? new PoolClosedError('The pool was closed while it was opening.');
    }
    this.#setState('Opened');
    this.#pump();
  }

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
    options?: InvokeOptions<A, U>,
  ): Promise<Awaited<R>>;
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
  invoke(target: Function | ModuleFunction, options: InvokeOptions<readonly unknown[], unknown> = {}): Promise<unknown> {
    let task: Task;
    try {
      this.#assertAccepting('invoke');
      task = this.#createTask(buildTaskSpec(target, options), options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!task.settled) this.#schedule(task);
    return task.promise;
  }

  #schedule(task: Task): void {
    const host = this.#waitingCount === 0 ? this.#idle.pop() : undefined;
    if (host !== undefined) {
      // The common quiet case: a free runspace and nobody ahead in line.
      this.#leaveIdle(host);
      this.#stats.recordWait(0);
      this.#dispatch(host, [task]);
    } else {
      this.#enqueue(task);
      this.#pump();
    }
  }

  /** @internal What the parallel layer needs beyond the public API. */
  readonly [poolInternals]: PoolInternals = {
    submit: (spec, options) => this.#submit(spec, options),
    submitBehind: (host, spec, options) => this.#submitBehind(host, spec, options),
    submitFresh: (spec, options) => this.#submitFresh(spec, options),
    forgetUsing: (usingId) => {
      for (const host of this.#hosts) host.forgetUsing(usingId);
    },
    assertAccepting: (operation) => this.#assertAccepting(operation),
  };

  /** Like `invoke`, but returns the task itself. */
  #submit(spec: TaskSpec, options: SubmitOptions): Task {
    this.#assertAccepting('run a parallel loop');
    const task = this.#createTask(spec, options);
    if (!task.settled) this.#schedule(task);
    return task;
  }

  /**
   * Pipelining: a task sent to a runspace still busy with the same caller's
   * earlier task, so that runspace goes straight on to it. Refused (nothing
   * created) when anyone waits in line, so it never jumps ahead of other
   * callers, or when the runspace is no longer the pool's to schedule on.
   */
  #submitBehind(host: RunspaceHost, spec: TaskSpec, options: SubmitOptions): Task | undefined {
    if (
      this.#waitingCount > 0 || this.#state !== 'Opened' || host.status !== 'open' || host.acquired || host.dedicated ||
      host.retiring || this.#releasing.has(host) || host.inFlight.length === 0
    ) return undefined;
    const task = this.#createTask(spec, options);
    if (task.settled) return task;
    this.#stats.recordWait(0);
    host.dispatch([task]);
    return task;
  }

  /** Runs a task on a runspace opened for it alone, closed once it settles (`useNewRunspace`). */
  #submitFresh(spec: TaskSpec, options: SubmitOptions): Task {
    this.#assertAccepting('run a parallel loop');
    const task = this.#createTask(spec, options);
    if (task.settled) return task;
    const host = this.#spawn(true);
    // A worker keeps messages sent before it listens, so this runs once it is ready.
    host.dispatch([task]);
    if (host.inFlight.length === 0) void host.terminate('fresh runspace not needed');
    return task;
  }

  /**
   * Takes one runspace out of the pool for your exclusive use, waiting in line
   * when all are busy. Release it with `release()` or `await using`.
   *
   * @example
   * ```ts
   * await using rs = await pool.acquire({ timeout: 10_000 });
   * await rs.invoke((ctx) => ctx.session.set('model', loadModel()));
   * ```
   */
  acquire(options: AcquireOptions = {}): Promise<Runspace> {
    try {
      this.#assertAccepting('acquire a runspace');
      assertTimeMs('timeout', options.timeout);
    } catch (error) {
      return Promise.reject(error);
    }
    const request = new AcquireRequest();
    const { signal, timeout } = options;
    if (signal?.aborted) return Promise.reject(new OperationCancelledError(signal.reason, false));
    if (signal) {
      const onAbort = (): void => this.#withdraw(request, new OperationCancelledError(signal.reason, false));
      signal.addEventListener('abort', onAbort, { once: true });
      request.onSettle(() => signal.removeEventListener('abort', onAbort));
    }
    if (timeout !== undefined) {
      const timer = setTimeout(() => this.#withdraw(request, new TimeoutError(timeout, false)), timeout);
      request.onSettle(() => clearTimeout(timer));
    }
    this.#enqueue(request);
    this.#pump();
    return request.promise;
  }

  /**
   * Runs `fn(item, ctx)` for every item of `input` across the pool's
   * runspaces: PowerShell's `ForEach-Object -Parallel`. Returns an async
   * iterable of outputs (see {@link ParallelLoop}); input is pulled only as
   * fast as items are processed. Quick items travel several per message.
   *
   * @example
   * ```ts
   * for await (const hash of pool.forEachParallel(files, (file, ctx) => hashFile(file, ctx.using.algorithm), {
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
  /** Runs the loop as a job with one child job per item (`ForEach-Object -Parallel -AsJob`). */
  forEachParallel<T, R, U extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>>(
    input: LoopInput<T>,
    fn: LoopFunction<T, R, U>,
    options: Omit<ForEachParallelOptions<U>, 'timeout'> & { readonly asJob: true; readonly name?: string; readonly timeout?: never },
  ): ParallelJob<Awaited<R>>;
  /** Runs an exported function of a module, `fn(item, ctx)`, for every item. */
  forEachParallel<R = unknown>(
    input: LoopInput<unknown>,
    fn: ModuleFunction,
    options?: ForEachParallelOptions & { readonly asJob?: false },
  ): ParallelLoop<R>;
  forEachParallel(
    input: LoopInput<unknown>,
    fn: Function | ModuleFunction,
    options: ForEachParallelOptions<unknown> & { readonly asJob?: boolean; readonly name?: string } = {},
  ): ParallelLoop<unknown> | ParallelJob<unknown> {
    const asJob = options?.asJob === true;
    const normalized = normalizeLoopOptions(options, asJob);
    if (!asJob) return new ParallelLoop(this[poolInternals], input, fn, normalized, this.#emitRecord);
    const job = new ParallelJob<unknown>(this[poolInternals], input, fn, normalized, options.name, this.#jobs.remove);
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
   * const job = pool.startThreadJob((ctx, url: string) => download(url), { args: [url], name: 'download' });
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
    this.#assertAccepting('start a thread job');
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options', 'expected an options object');
    const job = new ThreadJob<unknown>(fn, options, this.#jobs.remove);
    this.#jobs.add(job);
    this.#jobs.start(job);
    return job;
  }

  /** The pool's jobs not yet removed, oldest first (PowerShell's `Get-Job`). */
  getJobs(filter: { readonly name?: string; readonly state?: JobState } = {}): Job<unknown>[] {
    return this.#jobs.list().filter((job) => (filter.name === undefined || job.name === filter.name) && (filter.state === undefined || job.state === filter.state));
  }

  readonly #emitRecord = (record: StreamRecord): void => {
    this.emit('record', record);
  };

  /** Sets the maximum. False (and no change) when `n` is not an integer >= max(1, minRunspaces). */
  setMaxRunspaces(n: number): boolean {
    if (!isValidCount(n, 1) || n < this.#options.minRunspaces || this.#isShutDown()) return false;
    this.#options.maxRunspaces = n;
    this.#trimExcessIdle();
    this.#pump();
    return true;
  }

  /** Sets the minimum. False (and no change) when `n` is not an integer in 0..maxRunspaces. */
  setMinRunspaces(n: number): boolean {
    if (!isValidCount(n, 0) || n > this.#options.maxRunspaces || this.#isShutDown()) return false;
    this.#options.minRunspaces = n;
    if (this.#state === 'Opened') this.#ensureMinimum();
    for (const host of this.#idle) this.#armIdleTimer(host);
    return true;
  }

  getMaxRunspaces(): number {
    return this.#options.maxRunspaces;
  }

  getMinRunspaces(): number {
    return this.#options.minRunspaces;
  }

  /** How many more calls could start now without waiting: maximum minus runspaces busy or acquired. */
  getAvailableRunspaces(): number {
    let used = 0;
    for (const host of this.#hosts) if (host.acquired || host.inFlight.length > 0) used++;
    return Math.max(0, this.#options.maxRunspaces - used);
  }

  /** A snapshot of the pool's load and latencies. */
  stats(): PoolStats {
    let busy = 0;
    let acquired = 0;
    for (const host of this.#hosts) {
      if (host.acquired) acquired++;
      else if (host.inFlight.length > 0) busy++;
    }
    return {
      runspaces: this.#live(),
      idle: this.#idle.length,
      busy,
      acquired,
      queued: this.#waitingCount,
      completed: this.#stats.completed,
      failed: this.#stats.failed,
      waitTime: this.#stats.waitTime,
      runTime: this.#stats.runTime,
    };
  }

  /**
   * Closes the pool gracefully: work already running (including calls on
   * acquired runspaces) finishes; work still waiting for a runspace is
   * rejected with `PoolClosedError`; then every runspace is closed.
   */
  close(): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    this.#closePromise = this.#shutDown(false);
    return this.#closePromise;
  }

  /** Ends the pool at once: running work is stopped and rejected with `PoolClosedError`. */
  destroy(): Promise<void> {
    if (this.#closePromise && this.#destroying) return this.#closePromise;
    this.#destroying = true;
    this.#closePromise = this.#shutDown(true);
    return this.#closePromise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #shutDown(immediately: boolean): Promise<void> {
    if (this.#state === 'Closed') return;
    if (this.#state !== 'Broken') this.#setState('Closing');
    this.#rejectWaiting(new PoolClosedError('The pool closed before this work started.'));
    this.#jobs.close(new PoolClosedError('The pool closed before this job started.'));
    for (const host of this.#hosts) if (host.idleTimer) clearTimeout(host.idleTimer);
    if (!immediately) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        this.#checkDrained();
      });
    }
    await Promise.all([...this.#hosts].map((host) => host.terminate(immediately ? 'pool destroyed' : 'pool closed')));
    if (this.#state !== 'Broken') this.#setState('Closed');
  }

  #checkDrained(): void {
    if (this.#drained === undefined) return;
    for (const host of this.#hosts) if (host.inFlight.length > 0 && !this.#destroying) return;
    const drained = this.#drained;
    this.#drained = undefined;
    drained();
  }

  #assertAccepting(operation: string): void {
    switch (this.#state) {
      case 'Opened':
      case 'Opening':
        return;
      case 'BeforeOpen':
        throw new InvalidPoolStateError(this.#state, 'Opened', operation);
      case 'Broken':
        throw new InvalidPoolStateError(this.#state, 'Opened', operation);
      default:
        throw new PoolClosedError();
    }
  }

  #isShutDown(): boolean {
    return this.#state === 'Closing' || this.#state === 'Closed' || this.#state === 'Broken';
  }

  #setState(state: RunspacePoolState, reason?: Error): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.emit('stateChanged', reason ? { previous, state, reason } : { previous, state });
  }

  // ---- tasks ---------------------------------------------------------------

  #createTask(spec: TaskSpec, options: InvokeOptions<readonly unknown[], unknown>): Task {
    const task = new Task(spec, options.timeout);
    const { signal, timeout } = options;
    if (signal?.aborted) {
      task.cancelKind = 'abort';
      task.cancelReason = signal.reason;
      task.reject(task.cancellationError(false));
      return task;
    }
    if (signal) {
      const onAbort = (): void => this.#cancel(task, 'abort', signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      task.onSettle(() => signal.removeEventListener('abort', onAbort));
    }
    if (timeout !== undefined) {
      const timer = setTimeout(() => this.#cancel(task, 'timeout', undefined), timeout);
      task.onSettle(() => clearTimeout(timer));
    }
    return task;
  }

  #cancel(task: Task, kind: CancelKind, reason: unknown): void {
    if (task.settled || task.cancelKind !== undefined) return;
    task.cancelKind = kind;
    task.cancelReason = reason;
    if (task.state === 'queued') {
      this.#waitingCount--;
      task.reject(task.cancellationError(false));
      return;
    }
    const host = task.host!;
    host.cancel(task, kind);
    const grace = setTimeout(() => {
      if (task.settled || host.status === 'exited') return;
      if (host.hasStarted(task)) {
        void host.terminate('recycled: a cancelled call ignored its signal');
      } else {
        // Still behind other work in that runspace, which will skip it.
        task.reject(task.cancellationError(false));
      }
    }, this.#options.cancelGracePeriod);
    task.onSettle(() => clearTimeout(grace));
  }

  #invokePinned(host: RunspaceHost, target: Function | ModuleFunction, options: InvokeOptions<readonly unknown[], unknown>): Promise<unknown> {
    try {
      return this.#pinned(host, buildTaskSpec(target, options), options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #pinned(host: RunspaceHost, spec: TaskSpec, options: InvokeOptions<readonly unknown[], unknown>): Promise<unknown> {
    if (this.#state === 'Closing' || this.#state === 'Closed') return Promise.reject(new PoolClosedError());
    if (host.status === 'exited') return Promise.reject(this.#brokenErrors.get(host) ?? new PoolClosedError());
    const task = this.#createTask(spec, options);
    if (!task.settled) host.dispatch([task]);
    return task.promise;
  }

  #enqueue(item: Waiting): void {
    this.#waiting.push(item);
    this.#waitingCount++;
  }

  #withdraw(request: AcquireRequest, error: Error): void {
    if (request.settled) return;
    this.#waitingCount--;
    request.reject(error);
  }

  #peekWaiting(): Waiting | undefined {
    let head = this.#waiting.peek();
    while (head !== undefined && head.settled) {
      this.#waiting.shift();
      head = this.#waiting.peek();
    }
    return head;
  }

  #takeWaiting(): Waiting {
    this.#waitingCount--;
    return this.#waiting.shift()!;
  }

  #rejectWaiting(error: Error): void {
    for (const item of this.#waiting.drain()) item.reject(error);
    this.#waitingCount = 0;
  }

  // ---- scheduling ----------------------------------------------------------

  #pump(): void {
    // While opening, runspaces that are ready already take work.
    if (this.#pumping || (this.#state !== 'Opened' && this.#state !== 'Opening')) return;
    this.#pumping = true;
    try {
      for (let head = this.#peekWaiting(); head !== undefined; head = this.#peekWaiting()) {
        if (head instanceof AcquireRequest) {
          const host = this.#idle.pop();
          if (host === undefined) break;
          this.#leaveIdle(host);
          this.#takeWaiting();
          this.#handOut(host, head);
          continue;
        }
        let host = this.#idle.pop();
        if (host !== undefined) this.#leaveIdle(host);
        else host = this.#pipelineCandidate(head);
        if (host === undefined) break;
        this.#dispatchBatch(host);
      }
      this.#grow();
    } finally {
      this.#pumping = false;
    }
  }

  /** A runspace running quick work that can take the next batch before it finishes. */
  #pipelineCandidate(head: Task): RunspaceHost | undefined {
    if (head.spec.cost.ns >= PIPELINE_LIMIT_NS) return undefined;
    let best: RunspaceHost | undefined;
    for (const host of this.#hosts) {
      if (host.status !== 'open' || host.acquired || host.dedicated || this.#releasing.has(host) || host.pendingNs >= PIPELINE_LIMIT_NS) continue;
      if (best === undefined || host.pendingNs < best.pendingNs) best = host;
    }
    return best;
  }

  #dispatchBatch(host: RunspaceHost): void {
    const limit = fairShare(this.#waitingCount, this.#hosts.size);
    const batch: Task[] = [];
    let budgetNs = 0;
    const now = performance.now();
    for (let head = this.#peekWaiting(); head instanceof Task && batch.length < limit; head = this.#peekWaiting()) {
      if (batch.length > 0 && budgetNs + head.spec.cost.ns > TARGET_BATCH_NS) break;
      this.#takeWaiting();
      batch.push(head);
      budgetNs += head.spec.cost.ns;
      this.#stats.recordWait(now - head.enqueuedAt);
    }
    this.#dispatch(host, batch);
  }

  /** Sends work; a runspace whose every task failed to send is free again at once. */
  #dispatch(host: RunspaceHost, tasks: Task[]): void {
    host.dispatch(tasks);
    if (host.inFlight.length === 0 && !host.acquired) this.#becomeIdle(host);
  }

  /** Runspaces not already on their way out: what counts against min and max. */
  #live(): number {
    let live = 0;
    for (const host of this.#hosts) if (!host.retiring && !host.dedicated) live++;
    return live;
  }

  #grow(): void {
    let wanted = this.#waitingCount - this.#opening;
    while (wanted > 0 && this.#live() < this.#options.maxRunspaces) {
      this.#spawn();
      wanted--;
    }
  }

  #ensureMinimum(): void {
    while (this.#live() < this.#options.minRunspaces) this.#spawn();
  }

  #spawn(dedicated = false): RunspaceHost {
    const host = new RunspaceHost(
      {
        variables: this.#options.variables,
        modules: this.#options.modules,
        startup: this.#startup,
        resourceLimits: this.#options.resourceLimits,
        spinBeforeSleepUs: this.#options.spinBeforeSleep,
      },
      this.#hostEvents,
    );
    this.#hosts.add(host);
    host.dedicated = dedicated;
    if (!dedicated) this.#opening++;
    return host;
  }

  #handOut(host: RunspaceHost, request: AcquireRequest): void {
    host.acquired = true;
    const runspace = new Runspace(this.#owner, host);
    this.#handles.set(host, runspace);
    request.resolve(runspace);
  }

  #release(host: RunspaceHost): void {
    this.#handles.delete(host);
    if (host.status === 'exited') return;
    host.acquired = false;
    if (host.inFlight.length > 0) {
      this.#releasing.add(host);
      return;
    }
    this.#becomeIdle(host);
  }

  #becomeIdle(host: RunspaceHost): void {
    if (this.#state === 'Closing' || this.#state === 'Closed') {
      this.#checkDrained();
      return;
    }
    if (this.#live() > this.#options.maxRunspaces) {
      void host.terminate('trimmed: above maxRunspaces');
      return;
    }
    this.#idle.push(host);
    this.#armIdleTimer(host);
    this.#pump();
  }

  #leaveIdle(host: RunspaceHost): void {
    if (host.idleTimer) {
      clearTimeout(host.idleTimer);
      host.idleTimer = undefined;
    }
  }

  #armIdleTimer(host: RunspaceHost): void {
    if (host.idleTimer) clearTimeout(host.idleTimer);
    host.idleTimer = undefined;
    if (this.#live() <= this.#options.minRunspaces || !Number.isFinite(this.#options.idleTimeout)) return;
    host.idleTimer = setTimeout(() => {
      host.idleTimer = undefined;
      // Objects living in the runspace would die with it: it stays while proxies of them are held.
      // (Every proxy of them, in any runspace, relays through one the main thread holds.)
      if (host.link.remoteCount > 0) {
        this.#armIdleTimer(host);
        return;
      }
      if (this.#live() > this.#options.minRunspaces && this.#idle.remove(host)) {
        void host.terminate('trimmed: idle past idleTimeout');
      }
    }, this.#options.idleTimeout);
    host.idleTimer.unref();
  }

  #trimExcessIdle(): void {
    while (this.#live() > this.#options.maxRunspaces && this.#idle.length > 0) {
      const host = this.#idle.pop()!;
      this.#leaveIdle(host);
      void host.terminate('trimmed: above maxRunspaces');
    }
  }

  // ---- runspace events -----------------------------------------------------

  readonly #hostEvents: HostEvents = {
    ready: (host, openErrors) => {
      if (!host.dedicated) this.#opening--;
      if (openErrors.length > 0) {
        const first = openErrors[0];
        const error = new RunspaceOpenError(
          host.id,
          first instanceof Error ? first.message : String(first),
          { cause: openErrors.length === 1 ? first : new AggregateError(openErrors, 'several open errors') },
        );
        if (this.#options.throwOnOpenError) {
          this.#break(error);
          return;
        }
        this.emit('runspaceOpenError', error);
      }
      this.emit('runspaceOpened', host.id);
      if (host.inFlight.length === 0 && !host.dedicated) this.#becomeIdle(host);
    },

    taskDone: (host, task, result) => this.#settle(host, task, result),

    progressed: (host) => {
      if (host.dedicated) {
        if (host.inFlight.length === 0) void host.terminate('fresh runspace done');
        return;
      }
      if (host.inFlight.length === 0) {
        if (this.#releasing.delete(host) || !host.acquired) this.#becomeIdle(host);
        else this.#checkDrained();
      }
      this.#pump();
    },

    record: (_host, task, record) => {
      const handler = task?.spec.onRecord;
      if (handler) {
        try {
          handler(record);
        } catch (error) {
          queueMicrotask(() => {
            throw error;
          });
        }
      } else {
        this.emit('record', record);
      }
    },

    exited: (host, info, lost, unstarted) => this.#onExit(host, info, lost, unstarted),
  };

  #settle(host: RunspaceHost, task: Task, result: WireResult): void {
    task.spec.cost.record(result.runNs);
    this.#stats.recordRun(result.runNs);
    if (task.cancelKind !== undefined && !(result.ok && task.spec.keepResultWhenCancelled)) {
      this.#stats.failed++;
      task.reject(task.cancellationError(false));
    } else if (result.ok) {
      this.#stats.completed++;
      this.#resolveWith(host, task, result.value, result.loadsClasses === true);
    } else {
      this.#stats.failed++;
      task.reject(deserializeError(result.error));
    }
  }

  /**
   * Decodes a result through its runspace's link, first importing the classes
   * it copies when needed. A chunk's outputs are decoded each on its own, as
   * each item's result was encoded.
   */
  #resolveWith(host: RunspaceHost, task: Task, value: unknown, loadsClasses: boolean): void {
    const link = host.link;
    const outcome = task.spec.chunk === undefined ? undefined : (value as ChunkOutcome);
    const decode = (): void => {
      try {
        task.resolve(outcome === undefined ? link.decode(value) : decodeOutcome(link, outcome));
      } catch (error) {
        task.reject(error);
      }
    };
    const loading = loadsClasses ? link.prepare(outcome === undefined ? [value] : outcome.values) : undefined;
    if (loading === undefined) decode();
    else loading.then(decode, (error: unknown) => task.reject(error));
  }

  #onExit(host: RunspaceHost, info: ExitInfo, lost: Task[], unstarted: Task[]): void {
    // First of all: locks the dead runspace held pass to their waiters, flagged abandoned.
    recoverAbandoned(host.id);
    this.#hosts.delete(host);
    this.#idle.remove(host);
    this.#releasing.delete(host);
    const handle = this.#handles.get(host);
    this.#handles.delete(host);
    const broken = new RunspaceBrokenError(host.id, info.exitCode, info.reason, { cause: info.error });
    this.#brokenErrors.set(host, broken);
    const stopped = this.#destroying ? new PoolClosedError('The pool was destroyed while this work ran.') : broken;
    for (const task of lost) {
      this.#stats.failed++;
      task.reject(task.cancelKind !== undefined && !this.#destroying ? task.cancellationError(true) : stopped);
    }
    if (handle !== undefined || host.dedicated || this.#isShutDown()) {
      // Calls pinned to this runspace had nowhere else to go.
      for (const task of unstarted) task.reject(task.cancelKind !== undefined ? task.cancellationError(false) : stopped);
    } else {
      const again: Task[] = [];
      for (const task of unstarted) {
        // A task cancelled while it waited behind the dead one is done: it must not run elsewhere.
        if (task.cancelKind !== undefined) task.reject(task.cancellationError(false));
        else {
          task.state = 'queued';
          again.push(task);
        }
      }
      this.#waiting.unshiftAll(again);
      this.#waitingCount += again.length;
    }
    this.emit('runspaceClosed', { runspaceId: host.id, exitCode: info.exitCode, reason: info.reason, intended: info.intended });
    if (info.duringOpen && !info.intended && host.dedicated) {
      this.emit('runspaceOpenError', new RunspaceOpenError(host.id, `it stopped before it was ready (${info.reason})`, { cause: info.error }));
    } else if (info.duringOpen && !info.intended) {
      this.#opening--;
      this.#onOpenFailure(new RunspaceOpenError(host.id, `it stopped before it was ready (${info.reason})`, { cause: info.error }));
    } else if (this.#state === 'Opened') {
      this.#ensureMinimum();
      this.#pump();
    }
    this.#checkDrained();
  }

  /**
   * A runspace could not open. Opening is deterministic (same modules, same
   * scripts), so retrying would likely loop: with `throwOnOpenError`, the pool
   * breaks; without, work waits only while some other runspace can serve it.
   */
  #onOpenFailure(error: RunspaceOpenError): void {
    if (this.#options.throwOnOpenError) {
      this.#break(error);
      return;
    }
    this.emit('runspaceOpenError', error);
    let serving = false;
    for (const host of this.#hosts) if (host.status !== 'exited') serving = true;
    if (!serving) this.#rejectWaiting(error);
  }

  #break(reason: Error): void {
    this.#brokenReason = reason;
    this.#setState('Broken', reason);
    this.#rejectWaiting(reason);
    for (const host of this.#hosts) void host.terminate('pool broken');
  }
}

function decodeOutcome(link: AffinityLink, outcome: ChunkOutcome): ChunkOutcome {
  const values = link.decodeArgs(outcome.values);
  return values === outcome.values ? outcome : { ...outcome, values };
}
