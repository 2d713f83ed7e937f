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
import { ClusterUnavailableError, InvalidArgumentError, ObjectDisposedError, OperationCancelledError, SemaphoreFullError, TimeoutError } from '../errors.js';
import { deadlineOf, remaining, timeoutMs } from '../util/deadline.js';
import { cancelOptions, readOptions } from '../util/options.js';
import { connectScriptClient, type ScriptClient } from './connection.js';

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
 * only: `acquire`, `release`, `withLock`, as `Semaphore`'s. A holder that
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
  readonly #client: ScriptClient;
  readonly #key: string;
  readonly #name: string;
  readonly #maximum: number;
  readonly #lease: number;
  /** The permits this object holds, newest last. */
  readonly #held: string[] = [];
  #renewal: NodeJS.Timeout | undefined;
  #disposed = false;

  private constructor(client: ScriptClient, name: string, maximum: number, lease: number) {
    this.#client = client;
    this.#name = name;
    this.#maximum = maximum;
    this.#lease = lease;
    this.#key = `runspaces:semaphore:{${name}}:holders`;
  }

  /** Connects to Redis for the semaphore of this name. */
  static async open(name: string, options: ClusterSemaphoreOptions): Promise<ClusterSemaphore> {
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) throw new InvalidArgumentError('name', 'expected 1 to 200 characters');
    const read = readOptions(options, ['redis', 'maximumCount', 'lease']) as ClusterSemaphoreOptions;
    if (typeof read.redis !== 'string') throw new InvalidArgumentError('redis', 'expected a Redis URL (redis://host:port)');
    if (typeof read.maximumCount !== 'number' || !Number.isInteger(read.maximumCount) || read.maximumCount < 1) {
      throw new InvalidArgumentError('maximumCount', 'expected an integer >= 1');
    }
    const lease = timeoutMs('lease', read.lease ?? 10_000);
    if (lease === undefined || lease < 100) throw new InvalidArgumentError('lease', 'expected at least 100 ms');
    return new ClusterSemaphore(await connectScriptClient(read.redis), name, read.maximumCount, lease);
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
    return Number(await this.#run(FREE, this.#maximum));
  }

  /** Takes a permit: true, or false when `timeout` passed; rejects with `OperationCancelledError` on abort. */
  async acquire(options?: { readonly timeout?: number; readonly signal?: AbortSignal }): Promise<boolean> {
    this.#assertLive();
    const { timeout, signal } = cancelOptions(options);
    const deadline = deadlineOf(timeout);
    const permit = randomUUID();
    for (let pause = 2; ; pause = Math.min(pause * 2, 64)) {
      if (signal?.aborted) throw new OperationCancelledError(signal.reason, false);
      if ((await this.#run(ACQUIRE, permit, this.#lease, this.#maximum)) === 1) {
        this.#held.push(permit);
        this.#renewal ??= setInterval(() => void this.#renew(), Math.max(50, Math.floor(this.#lease / 3))).unref();
        return true;
      }
      const left = remaining(deadline);
      if (left <= 0) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
    }
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
    await this.#run('return redis.call(\'ZREM\', KEYS[1], ARGV[1])', permit);
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

  /** Gives back what it holds (when Redis answers) and disconnects; later calls throw `ObjectDisposedError`. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    while (this.#held.length > 0) await this.release().catch(() => undefined);
    this.#disposed = true;
    this.#client.disconnect();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  async #renew(): Promise<void> {
    if (this.#held.length === 0) return;
    try {
      await this.#run(RENEW, this.#lease, ...this.#held);
    } catch {
      // Redis away for a moment: the next renewal tries again, within the lease.
    }
  }

  async #run(script: string, ...args: (string | number)[]): Promise<unknown> {
    try {
      return await this.#client.eval(script, 1, this.#key, ...args);
    } catch (error) {
      throw new ClusterUnavailableError(`The cluster semaphore '${this.#name}' could not reach Redis: ${(error as Error).message}`, { cause: error });
    }
  }

  #assertLive(): void {
    if (this.#disposed) throw new ObjectDisposedError('ClusterSemaphore');
  }
}
