/**
 * A counting semaphore for processes on several machines, kept in Redis: a
 * sorted set of permit holders, each scored by the time its lease ends.
 * Taking a permit first drops the holders whose lease ended (a holder that
 * died gives its permit back that way), then adds itself when fewer than
 * `maximumCount` remain; each holder renews its leases every third of one.
 * One Lua script per step, with Redis's own clock, so holders on machines
 * whose clocks differ agree (decision 0038).
 *
 * @module
 */

import { randomUUID } from 'node:crypto';
import { InvalidArgumentError, ObjectDisposedError, SemaphoreFullError, TimeoutError } from '../errors.js';
import { isValidCount } from '../pool/options.js';
import { timeoutMs } from '../util/deadline.js';
import { readOptions } from '../util/options.js';
import { LockClient } from './lock-client.js';

const NOW_MS = `local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)`;

/** Drops ended leases, then takes a permit if one is free: 1, or 0. */
const ACQUIRE = `${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

/** Renews this holder's leases: how many it still had. */
const RENEW = `${NOW_MS}
local kept = 0
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
    kept = kept + 1
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return kept`;

/** Permits free now. */
const FREE = `${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])`;

/** Options of `ClusterSemaphore.open`. */
export interface ClusterSemaphoreOptions {
  /** Where Redis is: `redis://host:port[/db]`. */
  readonly redis: string;
  /** Permits in all; every process opening the name must give the same. */
  readonly maximumCount: number;
  /** Milliseconds a permit stays held without a renewal (renewed every third of it). Default 10 000. */
  readonly lease?: number;
}

/**
 * A semaphore shared by processes on any machine that reaches one Redis:
 * at most `maximumCount` permits held at once, all free at first. Async
 * only: `acquire`, `release`, `withLock`, `isLocked`, `waitForUnlock`,
 * `cancel`, as `Semaphore`'s. A holder that
 * dies gives its permits back when their lease ends. Waiting looks every
 * few milliseconds (2, doubling to 64).
 *
 * @example
 * ```ts
 * const downloads = await ClusterSemaphore.open('downloads', { redis: 'redis://127.0.0.1:6379', maximumCount: 10 });
 * await downloads.withLock(async () => {
 *   // at most 10 of these at once, across every machine
 * });
 * await downloads.dispose();
 * ```
 */
export class ClusterSemaphore {
  readonly #redis: LockClient;
  readonly #name: string;
  readonly #maximum: number;
  /** The permits this object holds, newest last. */
  readonly #held: string[] = [];
  #renewal: NodeJS.Timeout | undefined;
  #disposed = false;

  private constructor(redis: LockClient, name: string, maximum: number) {
    this.#redis = redis;
    this.#name = name;
    this.#maximum = maximum;
  }

  /** Connects to Redis for the semaphore of this name. */
  static async open(name: string, options: ClusterSemaphoreOptions): Promise<ClusterSemaphore> {
    const read = readOptions(options, ['redis', 'maximumCount', 'lease']);
    if (!isValidCount(read.maximumCount, 1)) throw new InvalidArgumentError('maximumCount', 'expected an integer >= 1');
    const redis = await LockClient.open('cluster semaphore', name, read, (base) => [`runspaces:semaphore:{${base}}:holders`]);
    return new ClusterSemaphore(redis, name, read.maximumCount);
  }

  get name(): string {
    return this.#name;
  }

  get maximumCount(): number {
    return this.#maximum;
  }

  /** Permits this object holds. */
  get heldCount(): number {
    return this.#held.length;
  }

  /** Permits free across the cluster right now (a snapshot). */
  async freeCount(): Promise<number> {
    this.#assertLive();
    return Number(await this.#redis.run(FREE, this.#maximum));
  }

  /** Takes a permit: true, or false when `timeout` passed; rejects with `OperationCancelledError` on abort. */
  async acquire(options?: { readonly timeout?: number; readonly signal?: AbortSignal }): Promise<boolean> {
    this.#assertLive();
    const permit = randomUUID();
    return this.#redis.retry(async () => {
      if ((await this.#redis.run(ACQUIRE, permit, this.#redis.lease, this.#maximum)) !== 1) return false;
      this.#held.push(permit);
      this.#renewal ??= setInterval(() => void this.#renew(), this.#redis.renewEvery).unref();
      return true;
    }, options);
  }

  /** True while no permit is free (async-mutex's `isLocked`): a snapshot. */
  async isLocked(): Promise<boolean> {
    return (await this.freeCount()) <= 0;
  }

  /**
   * Resolves true once a permit is free, without taking it (async-mutex's
   * `waitForUnlock`); false on timeout; `OperationCancelledError` on abort
   * or `cancel()`.
   */
  async waitForUnlock(options?: { readonly timeout?: number; readonly signal?: AbortSignal }): Promise<boolean> {
    this.#assertLive();
    return this.#redis.retry(async () => !(await this.isLocked()), options);
  }

  /** Stops every `acquire`, `withLock` and `waitForUnlock` of this object still waiting: each rejects with `OperationCancelledError`, holding nothing. */
  cancel(): void {
    this.#redis.cancel(new Error('ClusterSemaphore.cancel() stopped this wait.'));
  }

  /** Gives back the permit taken last. Throws `SemaphoreFullError` when this object holds none. */
  async release(): Promise<void> {
    this.#assertLive();
    const permit = this.#held.pop();
    if (permit === undefined) throw new SemaphoreFullError(this.#maximum, 1);
    if (this.#held.length === 0) {
      clearInterval(this.#renewal);
      this.#renewal = undefined;
    }
    await this.#redis.run('return redis.call(\'ZREM\', KEYS[1], ARGV[1])', permit);
  }

  /** Runs `fn` holding a permit, given back afterwards whatever happens; `TimeoutError` when `timeout` passes first. */
  async withLock<T>(fn: () => T | Promise<T>, options: { readonly timeout?: number; readonly signal?: AbortSignal } = {}): Promise<T> {
    const timeout = timeoutMs('timeout', options.timeout);
    if (!(await this.acquire(options))) throw new TimeoutError(timeout ?? 0, false);
    try {
      return await fn();
    } finally {
      await this.release();
    }
  }

  /** Waits still pending reject (`OperationCancelledError`); gives back what it holds (when Redis answers) and disconnects; later calls throw `ObjectDisposedError`. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#redis.cancel(new ObjectDisposedError('ClusterSemaphore'));
    while (this.#held.length > 0) await this.release().catch(() => undefined);
    this.#disposed = true;
    this.#redis.disconnect();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  async #renew(): Promise<void> {
    if (this.#held.length === 0) return;
    try {
      await this.#redis.run(RENEW, this.#redis.lease, ...this.#held);
    } catch {
      // Redis away for a moment: the next renewal tries again, within the lease.
    }
  }

  #assertLive(): void {
    if (this.#disposed) throw new ObjectDisposedError('ClusterSemaphore');
  }
}
