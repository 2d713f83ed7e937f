/**
 * A mutex for processes on several machines, kept in Redis: a lease the
 * holder keeps renewing, a holder marker that outlives the lease (so the
 * next owner learns that the last one died holding it), and a fencing token
 * that increases with every acquisition, for storage to reject a stale
 * holder's late writes (the gap of Redlock-style locks).
 *
 * Each step is one Lua script, so taking the lock, counting the token and
 * reading the marker happen at once. redis-semaphore and redlock were
 * looked at first: neither returns a fencing token nor reports an
 * abandoned lock (decision 0038).
 *
 * @module
 */

import { randomUUID } from 'node:crypto';
import { AbandonedMutexError, ObjectDisposedError, SynchronizationLockError, TimeoutError } from '../errors.js';
import { timeoutMs } from '../util/deadline.js';
import { abortSignalOption, readOptions } from '../util/options.js';
import { LockClient } from './lock-client.js';

/** Takes a free lock: [fencing token, 1 when the last holder never released it], or nil. */
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local token = redis.call('INCR', KEYS[2])
  local abandoned = redis.call('EXISTS', KEYS[3])
  redis.call('SET', KEYS[3], ARGV[1])
  return {token, abandoned}
end
return false`;

/** Renews the lease while this holder has it: 1, or 0 when it lost it. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/** Lets go of the lock and its marker when this holder has it: 1, or 0. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[3])
  return 1
end
return 0`;

const IS_LOCKED = `return redis.call('EXISTS', KEYS[1])`;

/** Options of `ClusterMutex.open`. */
export interface ClusterMutexOptions {
  /** Where Redis is: `redis://host:port[/db]`. */
  readonly redis: string;
  /**
   * Milliseconds the lock stays held without a renewal; the holder renews
   * it every third of that. A holder that dies frees it this long after.
   * Default 10 000.
   */
  readonly lease?: number;
}

/** What `withLock` tells its callback: the fencing token of this acquisition, and whether the last holder died holding the lock. */
export interface ClusterLockInfo {
  readonly fencingToken: number;
  readonly abandoned: boolean;
}

/**
 * A mutex shared by processes on any machine that reaches one Redis.
 * Async only (a wait over the network must not block a thread): `acquire`,
 * `releaseMutex`, `withLock`, `isLocked`, `waitForUnlock`, `cancel`, as
 * `Mutex`'s. Each acquisition gets a
 * `fencingToken`, larger than every earlier one: pass it to the storage the
 * lock protects and have it refuse writes with a smaller token than it has
 * seen, so a holder that stalled past its lease cannot overwrite a newer
 * holder's work. A holder that dies (its process killed) frees the lock when
 * its lease runs out, and the next owner gets `AbandonedMutexError`, owning
 * the lock, as with a local mutex.
 *
 * Not reentrant: one holder at a time per object. Waiting looks every few
 * milliseconds (2, doubling to 64).
 *
 * @example
 * ```ts
 * const mutex = await ClusterMutex.open('inventory', { redis: 'redis://127.0.0.1:6379' });
 * await mutex.withLock(async ({ fencingToken }) => {
 *   // write to the shared store, passing fencingToken so it refuses older holders
 * });
 * await mutex.dispose();
 * ```
 */
export class ClusterMutex {
  readonly #redis: LockClient;
  readonly #name: string;
  #holder: string | undefined;
  #token = 0;
  #renewal: NodeJS.Timeout | undefined;
  #disposed = false;

  private constructor(redis: LockClient, name: string) {
    this.#redis = redis;
    this.#name = name;
  }

  /** Connects to Redis for the mutex of this name (created by its first acquisition). */
  static async open(name: string, options: ClusterMutexOptions): Promise<ClusterMutex> {
    const read = readOptions(options, ['redis', 'lease']);
    // One hash tag: the three keys live on the same Redis Cluster slot.
    const keysOf = (base: string): string[] => [`runspaces:mutex:{${base}}:lock`, `runspaces:mutex:{${base}}:fence`, `runspaces:mutex:{${base}}:held`];
    return new ClusterMutex(await LockClient.open('cluster mutex', name, read, keysOf), name);
  }

  get name(): string {
    return this.#name;
  }

  /** The fencing token of the current acquisition; 0 while this object does not hold the lock. */
  get fencingToken(): number {
    return this.#holder === undefined ? 0 : this.#token;
  }

  /**
   * Waits until this object holds the lock: true, or false when `timeout`
   * passed; rejects with `OperationCancelledError` on abort, and with
   * `AbandonedMutexError` (owning the lock) when the last holder died
   * holding it.
   */
  async acquire(options?: { readonly timeout?: number; readonly signal?: AbortSignal }): Promise<boolean> {
    this.#assertLive();
    if (this.#holder !== undefined) throw new SynchronizationLockError('This ClusterMutex already holds the lock; it is not reentrant.');
    const holder = randomUUID();
    return this.#redis.retry(async () => {
      const taken = (await this.#redis.run(ACQUIRE, holder, this.#redis.lease)) as [number, number] | null;
      if (taken === null) return false;
      this.#holder = holder;
      this.#token = Number(taken[0]);
      this.#renewal = setInterval(() => void this.#renew(), this.#redis.renewEvery);
      this.#renewal.unref();
      if (taken[1] === 1) throw new AbandonedMutexError(this);
      return true;
    }, options);
  }

  /** True while any process holds the lock (async-mutex's `isLocked`): a snapshot, one Redis round trip. */
  async isLocked(): Promise<boolean> {
    this.#assertLive();
    return (await this.#redis.run(IS_LOCKED)) === 1;
  }

  /**
   * Resolves true once the lock is free, without taking it (async-mutex's
   * `waitForUnlock`); false on timeout; `OperationCancelledError` on abort
   * or `cancel()`. Someone may take it first: to hold it, `acquire`.
   */
  async waitForUnlock(options?: { readonly timeout?: number; readonly signal?: AbortSignal }): Promise<boolean> {
    this.#assertLive();
    return this.#redis.retry(async () => !(await this.isLocked()), options);
  }

  /** Stops every `acquire`, `withLock` and `waitForUnlock` of this object still waiting: each rejects with `OperationCancelledError`, holding nothing. */
  cancel(): void {
    this.#redis.cancel(new Error('ClusterMutex.cancel() stopped this wait.'));
  }

  /** Lets go of the lock. Throws `SynchronizationLockError` when this object does not hold it (or lost it: its lease ran out). */
  async releaseMutex(): Promise<void> {
    this.#assertLive();
    const holder = this.#holder;
    if (holder === undefined) throw new SynchronizationLockError('This ClusterMutex does not hold the lock.');
    this.#stopHolding();
    if ((await this.#redis.run(RELEASE, holder)) !== 1) {
      throw new SynchronizationLockError('The lock was lost before it was released: its lease ran out (the process stalled longer than the lease). Writes made with its fencing token may have been refused.');
    }
  }

  /**
   * Runs `fn` holding the lock and releases it afterwards whatever happens.
   * Throws `TimeoutError` when `timeout` passes first. A lock whose last
   * holder died is handed to `fn` with `abandoned: true` when `onAbandoned`
   * is `'continue'`; by default it is released and `AbandonedMutexError`
   * thrown, as `Mutex.withLock` does.
   */
  async withLock<T>(fn: (info: ClusterLockInfo) => T | Promise<T>, options: { readonly timeout?: number; readonly signal?: AbortSignal; readonly onAbandoned?: 'throw' | 'continue' } = {}): Promise<T> {
    const { onAbandoned } = readOptions(options, ['onAbandoned']);
    const timeout = timeoutMs('timeout', options.timeout);
    abortSignalOption(options.signal);
    let abandoned = false;
    try {
      if (!(await this.acquire(options))) throw new TimeoutError(timeout ?? 0, false);
    } catch (error) {
      if (!(error instanceof AbandonedMutexError)) throw error;
      abandoned = true;
      if (onAbandoned !== 'continue') {
        await this.releaseMutex();
        throw error;
      }
    }
    try {
      return await fn({ fencingToken: this.#token, abandoned });
    } finally {
      await this.releaseMutex();
    }
  }

  /** Disconnects. Waits still pending reject (`OperationCancelledError`); a lock still held is released first (when Redis answers); later calls throw `ObjectDisposedError`. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#redis.cancel(new ObjectDisposedError('ClusterMutex'));
    if (this.#holder !== undefined) await this.releaseMutex().catch(() => undefined);
    this.#disposed = true;
    this.#redis.disconnect();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  async #renew(): Promise<void> {
    const holder = this.#holder;
    if (holder === undefined) return;
    try {
      if ((await this.#redis.run(RENEW, holder, this.#redis.lease)) !== 1 && this.#holder === holder) this.#stopRenewing();
    } catch {
      // Redis away for a moment: the next renewal tries again, within the lease.
    }
  }

  #stopHolding(): void {
    this.#holder = undefined;
    this.#stopRenewing();
  }

  #stopRenewing(): void {
    clearInterval(this.#renewal);
    this.#renewal = undefined;
  }

  #assertLive(): void {
    if (this.#disposed) throw new ObjectDisposedError('ClusterMutex');
  }
}
