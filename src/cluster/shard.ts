/**
 * One Redis of a cluster pool, with its queue, its nodes and this caller's
 * reply stream there. A pool opened on several Redis URLs has one shard
 * each and spreads its jobs over them (docs/scale-out.md, "Sharding").
 *
 * @module
 */

import { randomUUID } from 'node:crypto';
import { ClusterUnavailableError } from '../errors.js';
import type { JobHooks } from './cluster-loop.js';
import { cancelChannel, redisConnection, replyStream } from './connection.js';
import type { Engine } from './engine.js';
import { parseRedisUrl } from './engine.js';
import { ReplyReader, type ReplyClient } from './reply-reader.js';
import type { ClusterJob, QueuedJob } from './wire.js';

/** What a shard uses of BullMQ's `Queue`. */
interface JobQueue {
  add(name: string, data: QueuedJob, options: { jobId: string; removeOnComplete: boolean; removeOnFail: boolean }): Promise<unknown>;
  remove(jobId: string): Promise<unknown>;
  waitUntilReady(): Promise<unknown>;
  close(): Promise<void>;
  disconnect(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** What a shard uses of an ioredis client. */
interface RedisClient extends ReplyClient {
  readonly status: string;
  publish(channel: string, message: string): Promise<unknown>;
  del(key: string): Promise<unknown>;
  connect(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

export class ClusterShard {
  readonly url: string;
  readonly #queueName: string;
  readonly #queue: JobQueue;
  readonly #publisher: RedisClient;
  readonly #replies: ReplyReader;
  readonly #replyTo: string;
  readonly #stop: () => Promise<void>;
  readonly #unavailableAfter: number;
  #unreachableSince: number | undefined;
  #watch: NodeJS.Timeout | undefined;

  private constructor(url: string, queueName: string, parts: { queue: JobQueue; publisher: RedisClient; replies: ReplyReader; replyTo: string; stop: () => Promise<void> }, unavailableAfter: number) {
    this.url = url;
    this.#queueName = queueName;
    this.#queue = parts.queue;
    this.#publisher = parts.publisher;
    this.#replies = parts.replies;
    this.#replyTo = parts.replyTo;
    this.#stop = parts.stop;
    this.#unavailableAfter = unavailableAfter;
  }

  /** Connects; rejects with `ClusterUnavailableError` when this Redis cannot be reached within `unavailableAfter`. */
  static async open(engine: Engine, url: string, queueName: string, unavailableAfter: number): Promise<ClusterShard> {
    const location = parseRedisUrl(url);
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
      // Trouble shows as failed calls (and the unreachable watch), not as unhandled 'error' events.
      queue.on('error', () => undefined);
      await queue.waitUntilReady();
    };
    try {
      await Promise.race([
        opening(),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer from ${url} in ${unavailableAfter} ms`)), Math.min(unavailableAfter, 2 ** 31 - 1)).unref()),
      ]);
    } catch (error) {
      await stop();
      throw new ClusterUnavailableError(`Redis at ${url} cannot be reached: ${(error as Error).message}`, { cause: error });
    }
    const shard = new ClusterShard(url, queueName, { queue: queue!, publisher, replies, replyTo, stop }, unavailableAfter);
    replies.start();
    shard.#watchReachable();
    return shard;
  }

  /** Connected to its Redis now. */
  get ready(): boolean {
    return this.#publisher.status === 'ready';
  }

  /** Jobs of this caller queued or running here, not yet answered. */
  get waiting(): number {
    return this.#replies.size;
  }

  /** Queues a job and resolves with its packed result. */
  submit(job: ClusterJob, jobId: string, hooks: JobHooks): Promise<string> {
    return new Promise<string>((resolvePromise, reject) => {
      // Registered first: a quick node may finish before `add` returns.
      this.#replies.expect(jobId, { resolve: resolvePromise, reject, ...hooks });
      const queued: QueuedJob = { ...job, replyTo: this.#replyTo, notifyActive: hooks.onActive !== undefined };
      this.#queue.add(job.kind, queued, { jobId, removeOnComplete: true, removeOnFail: true }).then(
        () => this.#replies.queued(jobId),
        (error: unknown) => {
          if (this.#replies.forget(jobId)) reject(new ClusterUnavailableError(`The job could not be queued at ${this.url}: ${(error as Error).message}`, { cause: error }));
        },
      );
    });
  }

  /** Tells this shard's nodes that `id` is cancelled, and removes those of `jobIds` waiting here. */
  cancel(id: string, jobIds: readonly string[]): void {
    void this.#publisher.publish(cancelChannel(this.#queueName), id).catch(() => undefined);
    for (const jobId of jobIds) {
      if (this.#replies.forget(jobId)) void this.#queue.remove(jobId).catch(() => undefined);
    }
  }

  failAll(error: Error): void {
    this.#replies.failAll(error);
  }

  async close(): Promise<void> {
    clearInterval(this.#watch);
    await this.#stop();
  }

  /** This Redis away for longer than allowed fails the calls waiting on it. */
  #watchReachable(): void {
    this.#watch = setInterval(() => {
      if (this.ready) {
        this.#unreachableSince = undefined;
        return;
      }
      this.#unreachableSince ??= performance.now();
      if (performance.now() - this.#unreachableSince >= this.#unavailableAfter) {
        this.#replies.failAll(new ClusterUnavailableError(`Redis at ${this.url} has been unreachable for ${this.#unavailableAfter} ms; the calls waiting on it failed.`));
      }
    }, 250).unref();
  }
}
