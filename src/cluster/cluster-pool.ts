/**
 * The caller's side of a cluster: a pool whose runspaces are on worker
 * nodes, reached through a Redis queue. Calls and loops are written as for a
 * local `RunspacePool`: script blocks travel by source, values by structured
 * clone, module functions by their path under the deployment's module root.
 *
 * @module
 */

import { randomUUID } from 'node:crypto';
import { isAbsolute, relative, resolve } from 'node:path';
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
import { cancelChannel, DEFAULT_QUEUE, redisConnection, replyStream } from './connection.js';
import { ClusterLoop, type ClusterHost, type ClusterLoopOptions, type JobHooks } from './cluster-loop.js';
import { ClusterThreadJob, type ClusterThreadJobOptions } from './cluster-thread-job.js';
import { loadEngine, parseRedisUrl } from './engine.js';
import { ReplyReader, type ReplyClient } from './reply-reader.js';
import { invokeJob, unpack, type ClusterJob, type InvokeResult, type QueuedJob, type WireFunction } from './wire.js';

/** Options of `ClusterPool.open`. */
export interface ClusterPoolOptions {
  /** Where Redis is: `redis://host:port[/db]`. */
  readonly redis: string;
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

/** What the pool uses of BullMQ's `Queue` and of ioredis clients. */
interface JobQueue {
  add(name: string, data: QueuedJob, options: { jobId: string; removeOnComplete: boolean; removeOnFail: boolean }): Promise<unknown>;
  remove(jobId: string): Promise<unknown>;
  waitUntilReady(): Promise<unknown>;
  close(): Promise<void>;
  disconnect(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}
interface RedisClient extends ReplyClient {
  readonly status: string;
  publish(channel: string, message: string): Promise<unknown>;
  del(key: string): Promise<unknown>;
  connect(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
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
export class ClusterPool {
  readonly #queue: JobQueue;
  readonly #publisher: RedisClient;
  readonly #replies: ReplyReader;
  readonly #replyTo: string;
  readonly #stop: () => Promise<void>;
  readonly #queueName: string;
  readonly #moduleRoot: string;
  readonly #unavailableAfter: number;
  #unreachableSince: number | undefined;
  #watch: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(parts: { queue: JobQueue; publisher: RedisClient; replies: ReplyReader; replyTo: string; stop: () => Promise<void> }, queueName: string, moduleRoot: string, unavailableAfter: number) {
    this.#queue = parts.queue;
    this.#publisher = parts.publisher;
    this.#replies = parts.replies;
    this.#replyTo = parts.replyTo;
    this.#stop = parts.stop;
    this.#queueName = queueName;
    this.#moduleRoot = moduleRoot;
    this.#unavailableAfter = unavailableAfter;
  }

  /** Connects to the cluster's queue; rejects with `ClusterUnavailableError` when Redis cannot be reached. */
  static async open(options: ClusterPoolOptions): Promise<ClusterPool> {
    const read = readOptions(options, ['redis', 'queue', 'moduleRoot', 'unavailableAfter']) as ClusterPoolOptions;
    if (typeof read.redis !== 'string') throw new InvalidArgumentError('redis', 'expected a Redis URL (redis://host:port)');
    const engine = await loadEngine();
    const location = parseRedisUrl(read.redis);
    const queueName = read.queue ?? DEFAULT_QUEUE;
    const unavailableAfter = timeoutMs('unavailableAfter', read.unavailableAfter ?? 10_000) ?? Infinity;
    // Reconnecting goes on while the pool is open, and stops with it (else a closed pool's
    // connections would keep retrying, and the process alive, while Redis is away).
    let stopped = false;
    const connection = { ...redisConnection(location), retryStrategy: (times: number) => (stopped ? null : Math.min(times * 100, 2_000)) };
    const publisher = new engine.Redis({ ...connection, maxRetriesPerRequest: 1, lazyConnect: true }) as unknown as RedisClient;
    const reader = new engine.Redis({ ...connection, lazyConnect: true }) as unknown as RedisClient;
    const replyTo = replyStream(queueName, randomUUID());
    const replies = new ReplyReader(reader, publisher, replyTo, queueName);
    for (const client of [publisher, reader]) client.on('error', () => undefined);
    let queue: JobQueue | undefined;
    const stop = async (): Promise<void> => {
      stopped = true;
      // With Redis gone, BullMQ's close may never settle; the connections stop retrying all the same.
      // Disconnecting first ends a reconnect attempt in flight, whose failure would otherwise be
      // reported after close() took BullMQ's error listeners away.
      void queue?.disconnect().catch(() => undefined);
      const closed = Promise.allSettled([queue?.close(), replies.stop(), publisher.del(replyTo)]);
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
      publisher.disconnect();
      reader.disconnect();
    };
    const opening = async (): Promise<void> => {
      await Promise.all([publisher.connect(), reader.connect()]);
      // The producer fails fast while Redis is away instead of queueing commands for later.
      queue = new engine.Queue(queueName, { connection: { ...connection, maxRetriesPerRequest: 1, enableOfflineQueue: false } }) as unknown as JobQueue;
      // Trouble shows as failed calls (and the unreachable watch below), not as unhandled 'error' events.
      queue.on('error', () => undefined);
      await queue.waitUntilReady();
    };
    try {
      await Promise.race([
        opening(),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer from ${read.redis} in ${unavailableAfter} ms`)), Math.min(unavailableAfter, 2 ** 31 - 1)).unref()),
      ]);
    } catch (error) {
      await stop();
      throw new ClusterUnavailableError(`Redis at ${read.redis} cannot be reached: ${(error as Error).message}`, { cause: error });
    }
    const cluster = new ClusterPool({ queue: queue!, publisher, replies, replyTo, stop }, queueName, resolve(read.moduleRoot ?? process.cwd()), unavailableAfter);
    replies.start();
    cluster.#watchReachable();
    return cluster;
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
    const onRecords = read.onRecord === undefined ? undefined : (records: readonly StreamRecord[]) => records.forEach(read.onRecord!);
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
    clearInterval(this.#watch);
    this.#replies.failAll(new ClusterUnavailableError('The cluster pool was closed while the call waited.'));
    await this.#stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal Queues a job and resolves with its packed result. */
  submit(job: ClusterJob, jobId: string, hooks: JobHooks = {}): Promise<string> {
    return new Promise<string>((resolvePromise, reject) => {
      // Registered first: a quick node may finish before `add` returns.
      this.#replies.expect(jobId, { resolve: resolvePromise, reject, ...hooks });
      const queued: QueuedJob = { ...job, replyTo: this.#replyTo, notifyActive: hooks.onActive !== undefined };
      this.#queue.add(job.kind, queued, { jobId, removeOnComplete: true, removeOnFail: true }).then(
        () => this.#replies.queued(jobId),
        (error: unknown) => {
          if (this.#replies.forget(jobId)) reject(new ClusterUnavailableError(`The job could not be queued: ${(error as Error).message}`, { cause: error }));
        },
      );
    });
  }

  /** @internal Cancels a loop or call everywhere: running items through their signal, queued jobs by removal. */
  cancel(id: string, jobIds: readonly string[]): void {
    void this.#publisher.publish(cancelChannel(this.#queueName), id).catch(() => undefined);
    for (const jobId of jobIds) {
      this.#replies.forget(jobId);
      void this.#queue.remove(jobId).catch(() => undefined);
    }
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

  /** Redis away for longer than allowed fails the calls waiting on it. */
  #watchReachable(): void {
    this.#watch = setInterval(() => {
      if (this.#publisher.status === 'ready') {
        this.#unreachableSince = undefined;
        return;
      }
      this.#unreachableSince ??= performance.now();
      if (performance.now() - this.#unreachableSince >= this.#unavailableAfter) {
        this.#replies.failAll(new ClusterUnavailableError(`Redis has been unreachable for ${this.#unavailableAfter} ms; the calls waiting on it failed.`));
      }
    }, 250).unref();
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidOperationError('The cluster pool is closed.');
  }
}
