/**
 * The caller's side of a cluster: a pool whose runspaces are on worker
 * nodes, reached through a Redis queue. Calls and loops are written as for a
 * local `RunspacePool`: script blocks travel by source, values by structured
 * clone, module functions by their path under the deployment's module root.
 *
 * @module
 */

import { randomUUID } from 'node:crypto';
import { isAbsolute, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterUnavailableError, InvalidArgumentError, InvalidOperationError, OperationCancelledError, TimeoutError } from '../errors.js';
import type { Job } from '../parallel/job.js';
import type { LoopFunction } from '../parallel/options.js';
import type { ModuleFunction, ScriptBlock } from '../pool/invocation.js';
import { scriptFor } from '../pool/script-registry.js';
import { deserializeError } from '../protocol/error-codec.js';
import type { StreamRecord } from '../protocol/stream-records.js';
import { onCancel, timeoutMs } from '../util/deadline.js';
import { abortSignalOption, baseUrlOption, readOptions } from '../util/options.js';
import { moduleRootOption, queueOption } from './connection.js';
import { ClusterLoop, type ClusterHost, type ClusterLoopOptions, type JobHooks } from './cluster-loop.js';
import { ClusterThreadJob, type ClusterThreadJobOptions } from './cluster-thread-job.js';
import { loadEngine } from './engine.js';
import type { ParallelPool } from '../facade/parallel-pool.js';
import { ClusterShard } from './shard.js';
import { invokeJob, unpack, type ClusterJob, type InvokeResult, type WireFunction } from './wire.js';

/** Options of `ClusterPool.open`. */
export interface ClusterPoolOptions {
  /**
   * Where Redis is: `redis://host:port[/db]`. Several URLs make several
   * shards, each a Redis with the same queue name and nodes of its own
   * (`runspaces worker --redis` of that shard): jobs go to a connected shard
   * with the fewest of this pool's jobs waiting, so one Redis that is down
   * or slow takes less, and the cluster grows past what one Redis carries.
   */
  readonly redis: string | readonly string[];
  /** The queue the worker nodes take work from. Default `'runspaces'`. */
  readonly queue?: string;
  /**
   * The root of this deployment: a module function's file is sent as its
   * path under it, and each node finds it under its own `--module-root`.
   * Default the working directory.
   */
  readonly moduleRoot?: string;
  /**
   * Milliseconds Redis may stay unreachable before waiting calls fail with
   * `ClusterUnavailableError` (a call's own `timeout` may end it sooner).
   * Default 10 000.
   */
  readonly unavailableAfter?: number;
}

/** Options of `cluster.invoke`. */
export interface ClusterInvokeOptions<A extends readonly unknown[] = readonly unknown[], U = Readonly<Record<string, unknown>>> {
  readonly args?: A;
  readonly using?: U;
  /** Milliseconds for the call; then it is cancelled on its node and rejects with `TimeoutError`. */
  readonly timeout?: number;
  readonly signal?: AbortSignal;
  /** The file a script block's relative `import()` resolves against, under the module root (default: the file that defined it). */
  readonly baseUrl?: string | URL;
  /** Every stream record the call writes on its node, as it runs (gathered for up to 50 ms on the way). */
  readonly onRecord?: (record: StreamRecord) => void;
}

/** A shard of a cluster pool as seen from outside: for monitoring. */
export interface ClusterShardInfo {
  /** The shard's Redis URL. */
  readonly redis: string;
  /** Connected to it now; new jobs go to shards that are. */
  readonly ready: boolean;
  /** This pool's jobs queued or running there, not answered yet. */
  readonly waiting: number;
}

/**
 * A pool whose runspaces are on worker nodes (`runspaces worker --redis
 * URL`), anywhere that reaches the same Redis. Opened instead of a local
 * `RunspacePool`, it runs the same calls and loops.
 *
 * @example
 * ```ts
 * import { ClusterPool } from 'runspaces';
 * await using cluster = await ClusterPool.open({ redis: 'redis://127.0.0.1:6379' });
 * const sizes = await cluster.forEachParallel(files, async (file: string) => (await import('node:fs/promises')).stat(file).then((s) => s.size), { ordered: true });
 * ```
 */
export class ClusterPool implements ParallelPool {
  readonly #shards: readonly ClusterShard[];
  readonly #moduleRoot: string;
  /** Where the last job went, so that ties between shards take turns. */
  #turn = 0;
  #closed = false;

  private constructor(shards: readonly ClusterShard[], moduleRoot: string) {
    this.#shards = shards;
    this.#moduleRoot = moduleRoot;
  }

  /**
   * Connects to the cluster's queue (on each Redis, when given several);
   * rejects with `ClusterUnavailableError` when one cannot be reached.
   */
  static async open(options: ClusterPoolOptions): Promise<ClusterPool> {
    const read = readOptions(options, ['redis', 'queue', 'moduleRoot', 'unavailableAfter']) as ClusterPoolOptions;
    const urls = typeof read.redis === 'string' ? [read.redis] : Array.isArray(read.redis) ? [...(read.redis as readonly unknown[])] : [];
    if (urls.length === 0 || urls.some((url) => typeof url !== 'string')) throw new InvalidArgumentError('redis', 'expected a Redis URL (redis://host:port), or a non-empty array of them');
    if (new Set(urls).size !== urls.length) throw new InvalidArgumentError('redis', 'the same Redis URL is given twice');
    const queueName = queueOption(read.queue);
    const moduleRoot = moduleRootOption(read.moduleRoot);
    const unavailableAfter = timeoutMs('unavailableAfter', read.unavailableAfter ?? 10_000) ?? Infinity;
    const engine = await loadEngine();
    const opened = await Promise.allSettled((urls as string[]).map((url) => ClusterShard.open(engine, url, queueName, unavailableAfter)));
    const shards = opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failed = opened.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(shards.map((shard) => shard.close()));
      throw failed.reason;
    }
    return new ClusterPool(shards, moduleRoot);
  }

  /** The pool's Redis instances (one unless opened on several), for monitoring. */
  get shards(): readonly ClusterShardInfo[] {
    return this.#shards.map((shard) => ({ redis: shard.url, ready: shard.ready, waiting: shard.waiting }));
  }

  /**
   * Runs `fn(ctx, ...args)` in a runspace of some node and resolves with its
   * result (or rejects with its error, class and `code` kept).
   */
  invoke<R = unknown>(fn: ModuleFunction, options?: ClusterInvokeOptions): Promise<R>;
  invoke<A extends readonly unknown[], R, U extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>>(
    fn: ScriptBlock<A, R, U>,
    options?: ClusterInvokeOptions<A, U>,
  ): Promise<Awaited<R>>;
  async invoke(fn: Function | ModuleFunction, options: ClusterInvokeOptions = {}): Promise<unknown> {
    this.#assertOpen();
    const read = readOptions(options, ['args', 'using', 'timeout', 'signal', 'baseUrl', 'onRecord']) as ClusterInvokeOptions;
    if (read.onRecord !== undefined && typeof read.onRecord !== 'function') throw new InvalidArgumentError('onRecord', 'expected a function');
    const call = randomUUID();
    const job = invokeJob(call, this.wireFunction(fn, read.baseUrl), read.args, read.using);
    const timeout = timeoutMs('timeout', read.timeout);
    const signal = abortSignalOption(read.signal);
    const onRecord = read.onRecord;
    // One record per call, as a local pool calls it (forEach would pass its index and array too).
    const onRecords = onRecord === undefined ? undefined : (records: readonly StreamRecord[]) => {
      for (const record of records) onRecord(record);
    };
    const result = unpack<InvokeResult>(await this.#withCancel(this.submit(job, call, { onRecords }), call, [call], timeout, signal));
    if (!result.ok) throw deserializeError(result.error);
    return result.value;
  }

  /**
   * Runs `fn(item, ctx)` for every item on the cluster's nodes, in chunks:
   * a `ClusterLoop` to iterate (`for await`) or await (its outputs).
   */
  forEachParallel<R = unknown>(input: Iterable<unknown> | AsyncIterable<unknown>, fn: ModuleFunction, options?: ClusterLoopOptions): ClusterLoop<R>;
  forEachParallel<T, R, U extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>>(
    input: Iterable<T> | AsyncIterable<T>,
    fn: LoopFunction<T, R, U>,
    options?: ClusterLoopOptions<U>,
  ): ClusterLoop<Awaited<R>>;
  forEachParallel(input: Iterable<unknown> | AsyncIterable<unknown>, fn: Function | ModuleFunction, options: ClusterLoopOptions = {}): ClusterLoop<unknown> {
    this.#assertOpen();
    return new ClusterLoop<unknown>(this.#host, input, fn, options);
  }

  /**
   * Runs `fn(ctx, ...args)` on some node as a job (`Start-ThreadJob`): it is
   * `NotStarted` while queued, `Running` once a node takes it.
   *
   * @example
   * ```ts
   * const job = cluster.startThreadJob((ctx, url: string) => url.length, { args: ['https://example.org'] });
   * if (await job.wait({ timeout: 60_000 })) console.log(job.receive().output);
   * ```
   */
  startThreadJob<A extends readonly unknown[], R, U extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>>(
    fn: ScriptBlock<A, R, U> | ModuleFunction,
    options: ClusterThreadJobOptions<A, U> = {},
  ): ClusterThreadJob<Awaited<R>> {
    this.#assertOpen();
    const job = new ClusterThreadJob<Awaited<R>>(this.#host, fn as Function | ModuleFunction, options, (removed) => this.#jobs.delete(removed as Job<unknown>));
    this.#jobs.add(job as Job<unknown>);
    return job;
  }

  /** The cluster jobs started from this pool and not removed, oldest first (`Get-Job`). */
  getJobs(): Job<unknown>[] {
    return [...this.#jobs];
  }

  /** Stops listening and disconnects; calls still waiting reject with `ClusterUnavailableError`. Work already queued stays for the nodes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closing = new ClusterUnavailableError('The cluster pool was closed while the call waited.');
    for (const shard of this.#shards) shard.failAll(closing);
    await Promise.all(this.#shards.map((shard) => shard.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * @internal Queues a job on a shard and resolves with its packed result:
   * a connected shard with the fewest of this pool's jobs waiting, so work
   * flows to the shards that finish it soonest (ties take turns).
   */
  submit(job: ClusterJob, jobId: string, hooks: JobHooks = {}): Promise<string> {
    return this.#pickShard().submit(job, jobId, hooks);
  }

  /** @internal Cancels a loop or call everywhere: running items through their signal, queued jobs by removal. */
  cancel(id: string, jobIds: readonly string[]): void {
    for (const shard of this.#shards) shard.cancel(id, jobIds);
  }

  #pickShard(): ClusterShard {
    const count = this.#shards.length;
    if (count === 1) return this.#shards[0]!;
    let best: ClusterShard | undefined;
    for (let step = 1; step <= count; step++) {
      const shard = this.#shards[(this.#turn + step) % count]!;
      if (shard.ready && (best === undefined || shard.waiting < best.waiting)) best = shard;
    }
    // None connected: the first one's queue refuses the job at once with why.
    best ??= this.#shards[0]!;
    this.#turn = this.#shards.indexOf(best);
    return best;
  }

  /**
   * @internal A function as the nodes will find it. A script block's
   * relative `import()` resolves on the node against the same file under
   * its module root as here (the defining file, or `baseUrl`); a file
   * outside the module root leaves the module root itself.
   */
  wireFunction(fn: Function | ModuleFunction, baseUrl?: unknown): WireFunction {
    if (typeof fn === 'function') {
      // The same check as a local pool's: a script block that uses names of the code around it is refused now.
      const base = scriptFor(fn, baseUrlOption(baseUrl)).definition.base;
      const source = Function.prototype.toString.call(fn);
      const path = base?.startsWith('file:') === true ? relative(this.#moduleRoot, fileURLToPath(base)) : undefined;
      if (path === undefined || path.startsWith('..') || isAbsolute(path)) return { kind: 'script', source };
      // A directory (`new URL('./lib/', import.meta.url)`) stays one: its trailing slash decides what './x' means.
      return { kind: 'script', source, base: path.split('\\').join('/') + (base!.endsWith('/') && path !== '' ? '/' : '') };
    }
    const target = readOptions(fn, ['module', 'export', 'context'], 'fn') as ModuleFunction;
    const module = target.module instanceof URL ? target.module.href : target.module;
    if (typeof module !== 'string' || !module.startsWith('file:')) {
      throw new InvalidArgumentError('fn.module', 'a cluster module function needs a file URL under the module root (new URL(\'./tasks.js\', import.meta.url))');
    }
    const path = relative(this.#moduleRoot, fileURLToPath(module));
    if (path.startsWith('..')) throw new InvalidArgumentError('fn.module', `${module} is outside the module root ${this.#moduleRoot}: nodes find modules under their --module-root`);
    return { kind: 'module', path: path.split('\\').join('/'), export: target.export ?? 'default', context: target.context ?? true };
  }

  readonly #jobs = new Set<Job<unknown>>();

  /** What loops and thread jobs use of this pool. */
  readonly #host: ClusterHost = {
    submit: (job, jobId, hooks) => this.submit(job, jobId, hooks),
    cancel: (id, jobIds) => this.cancel(id, jobIds),
    isClosed: () => this.#closed,
    wireFunction: (fn, baseUrl) => this.wireFunction(fn, baseUrl),
  };

  #withCancel(settled: Promise<string>, id: string, jobIds: readonly string[], timeout: number | undefined, signal: AbortSignal | undefined): Promise<string> {
    if (timeout === undefined && signal === undefined) return settled;
    return new Promise((resolvePromise, reject) => {
      const detach = onCancel(signal, timeout, (cause) => {
        this.cancel(id, jobIds);
        reject(cause.kind === 'abort' ? new OperationCancelledError(cause.reason, false) : new TimeoutError(timeout ?? 0, false));
      });
      settled.then(
        (value) => {
          detach();
          resolvePromise(value);
        },
        (error: unknown) => {
          detach();
          reject(error);
        },
      );
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidOperationError('The cluster pool is closed.');
  }
}
