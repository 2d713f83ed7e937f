/**
 * Semaphore: .NET's `System.Threading.Semaphore` over shared memory.
 *
 * ## Slots
 * STATE is the current count (0..MAXIMUM); WAITERS counts threads and async
 * tasks waiting, so `release` skips `Atomics.notify` when nobody waits.
 * BROADCAST (the OWNER slot, unused by a semaphore) counts the waiters a
 * release of n permits might not reach by waking n: those taking several
 * permits at once (`weight`) and those only watching (`waitForUnlock`). While
 * there are any, a release wakes every waiter, so none of them absorbs a
 * wake-up a plain waiter needed.
 *
 * ## Protocol
 * Take: compare-exchange count → count - 1 while count > 0. Otherwise a
 * waiter first increments WAITERS, then re-checks the count, then sleeps
 * while the count is 0. Release: compare-exchange count → count + n (refused
 * past MAXIMUM), then read WAITERS and notify n when it is non-zero. Because
 * the waiter announces itself before its last check and the releaser reads
 * WAITERS after publishing the count, a release is never missed: either the
 * waiter sees the new count, or the releaser sees the waiter.
 *
 * ## Guarantees
 * Not fair (a newcomer may take a permit before a woken waiter); not owned
 * (any thread may release, as in .NET), so there is no abandonment. A timed
 * out or aborted wait takes nothing and leaves no waiter behind.
 *
 * @module
 */

import { isMainThread } from 'node:worker_threads';
import { InvalidArgumentError, ObjectDisposedError, SemaphoreFullError, TimeoutError, shown } from '../errors.js';
import { Kind, newCell, Slot, type Cell } from './arena.js';
import { openExistingNamed, openNamed, tryOpenExistingNamed } from './named.js';
import { adoptCell, registerKind, shareCell, takeAdopted, type SharedHandle } from './shared-cells.js';
import { assertMayBlock, blockUntil, deadlineAndSignal, deadlineOf, waitUntil } from './waiting.js';
import { WaitCanceller } from './cancel-waits.js';
import { HandleState } from './handles.js';
import { timeoutMs } from '../util/deadline.js';
import { cancelOptions, readOptions } from '../util/options.js';
import type { MutexAcquireOptions } from './mutex.js';

const TAKEN: Promise<boolean> = Promise.resolve(true);
const BROADCAST = Slot.Owner;

/** Options of `Semaphore.acquire`, `waitForUnlock` and `withLock`: how many permits, and how long to wait. */
export interface SemaphoreAcquireOptions extends MutexAcquireOptions {
  /** Permits taken (or waited for) at once, 1 to `maximumCount`. Default 1 (async-mutex's `weight`). */
  readonly weight?: number;
}

function assertCounts(initialCount: unknown, maximumCount: unknown): asserts initialCount is number {
  if (typeof maximumCount !== 'number' || !Number.isInteger(maximumCount) || maximumCount < 1 || maximumCount > 0x7fffffff) {
    throw new InvalidArgumentError('maximumCount', `expected an integer from 1 to 2147483647, got ${shown(maximumCount)}`);
  }
  if (typeof initialCount !== 'number' || !Number.isInteger(initialCount) || initialCount < 0) {
    throw new InvalidArgumentError('initialCount', `expected an integer >= 0, got ${shown(initialCount)}`);
  }
  if (initialCount > maximumCount) {
    throw new InvalidArgumentError('initialCount', `initialCount (${initialCount}) cannot exceed maximumCount (${maximumCount})`);
  }
}

/**
 * A counting semaphore shared by every runspace and the main thread: at most
 * `maximumCount` permits, `initialCount` of them free at the start.
 *
 * Unfair; not owned (any code may release); a timeout or abort takes nothing.
 * `waitOne` blocks its thread (refused on the main thread); `acquire` never
 * blocks an event loop.
 *
 * @example
 * ```ts
 * const downloads = new Semaphore(3, 3);          // at most 3 at once
 * await pool.invoke(async (ctx, url: string) => {
 *   const gate = ctx.using.downloads;
 *   if (!gate.waitOne(10_000)) throw new Error('busy');
 *   try {
 *     return await (await import('./downloads.js')).download(url);
 *   } finally {
 *     gate.release();
 *   }
 * }, { args: [url], using: { downloads } });
 * ```
 */
export class Semaphore {
  readonly #cell: Cell;
  readonly #name: string | null;
  readonly #canceller = new WaitCanceller();
  readonly #handle: HandleState;

  constructor(initialCount: number, maximumCount: number) {
    const adopted = takeAdopted();
    if (adopted !== undefined) {
      ({ cell: this.#cell, name: this.#name } = adopted);
    } else {
      assertCounts(initialCount, maximumCount);
      this.#cell = newCell(Kind.Semaphore);
      this.#cell.slots[Slot.Maximum] = maximumCount;
      this.#cell.slots[Slot.State] = initialCount;
      this.#name = null;
    }
    this.#handle = new HandleState(this, this.#cell, 'Semaphore');
  }

  /** @internal Rebuilds a semaphore around an existing cell. */
  static fromCell(cell: Cell, name: string | null): Semaphore {
    return adoptCell(cell, name, () => new Semaphore(0, 1));
  }

  /** Opens the named semaphore of this process, creating it with these counts if needed. */
  static open(name: string, initialCount: number, maximumCount: number): { semaphore: Semaphore; createdNew: boolean } {
    assertCounts(initialCount, maximumCount);
    const found = openNamed(Kind.Semaphore, name, (slots) => {
      slots[Slot.Maximum] = maximumCount;
      slots[Slot.State] = initialCount;
    });
    return { semaphore: Semaphore.fromCell(found.cell, found.name), createdNew: found.createdNew };
  }

  static openExisting(name: string): Semaphore {
    const found = openExistingNamed(Kind.Semaphore, name);
    return Semaphore.fromCell(found.cell, found.name);
  }

  static tryOpenExisting(name: string): Semaphore | undefined {
    const found = tryOpenExistingNamed(Kind.Semaphore, name);
    return found === undefined ? undefined : Semaphore.fromCell(found.cell, found.name);
  }

  get name(): string | null {
    return this.#name;
  }

  /** Permits free right now (a snapshot: other threads may change it at once). */
  get currentCount(): number {
    return Atomics.load(this.#cell.slots, Slot.State);
  }

  get maximumCount(): number {
    return this.#cell.slots[Slot.Maximum]!;
  }

  /** Blocks this runspace's thread until it takes a permit (true) or `timeout` ms pass (false). */
  waitOne(timeout?: number): boolean {
    this.#handle.assertLive();
    if (isMainThread) assertMayBlock('Semaphore.waitOne', 'await semaphore.acquire()');
    if (this.#tryTake()) return true;
    return blockUntil(this.#cell.slots, Slot.State, Slot.Waiters, this.#take, deadlineOf(timeoutMs('timeout', timeout)));
  }

  /**
   * Takes a permit (or `weight` permits, all at once) without blocking: true
   * when taken, false on timeout (nothing taken); rejects with
   * `OperationCancelledError` on abort or `cancel()`.
   */
  acquire(options?: SemaphoreAcquireOptions): Promise<boolean> {
    if (this.#handle.disposed) return Promise.reject(new ObjectDisposedError('Semaphore'));
    if (options === undefined && this.#tryTake()) return TAKEN;
    try {
      const weight = this.#weight(options);
      const [deadline, signal] = deadlineAndSignal(options);
      const take = weight === 1 ? this.#take : () => this.#tryTake(weight);
      return this.#wait(take, weight > 1, deadline, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Resolves true once `weight` permits (default 1) are free, without taking
   * them (async-mutex's `waitForUnlock`); false on timeout. Another caller
   * may take them first: to hold them, `acquire`.
   */
  waitForUnlock(options?: SemaphoreAcquireOptions): Promise<boolean> {
    try {
      this.#handle.assertLive();
      const weight = this.#weight(options);
      const slots = this.#cell.slots;
      return this.#wait(() => Atomics.load(slots, Slot.State) >= weight, true, ...deadlineAndSignal(options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** True when no permit is free (async-mutex's `isLocked`); a snapshot, as `currentCount`. */
  isLocked(): boolean {
    this.#handle.assertLive();
    return Atomics.load(this.#cell.slots, Slot.State) === 0;
  }

  /**
   * Stops every `acquire`, `waitForUnlock` and `withLock` still waiting
   * through this object (in this thread): each rejects with
   * `OperationCancelledError` and takes nothing (async-mutex's `cancel`).
   * Permits already held are untouched; later waits are unaffected.
   */
  cancel(): void {
    this.#canceller.cancel(new Error('Semaphore.cancel() stopped this wait.'));
  }

  /**
   * Disposes this object (also `using`): pending waits reject (`OperationCancelledError`, its
   * reason an `ObjectDisposedError`) and later calls throw `ObjectDisposedError`; a name is freed once every object
   * viewing it, in any thread, is disposed or collected.
   */
  dispose(): void {
    if (this.#handle.disposed) return;
    this.#canceller.cancel(new ObjectDisposedError('Semaphore'));
    this.#handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Runs `fn` holding `weight` permits (default 1) and releases them
   * afterwards whatever happens (async-mutex's `runExclusive`). Throws
   * `TimeoutError` when `timeout` passes before the permits are free.
   *
   * @example
   * ```ts
   * const bandwidth = new Semaphore(10, 10);
   * const { download } = await import('./downloads.js');
   * const body = await bandwidth.withLock(() => download(url), { weight: 4, timeout: 30_000 });   // a big file takes 4 of 10
   * ```
   */
  async withLock<T>(fn: () => T | Promise<T>, options: SemaphoreAcquireOptions = {}): Promise<T> {
    const weight = this.#weight(options);
    const { timeout, signal } = cancelOptions(options);
    if (!(await this.acquire({ timeout, signal, weight }))) throw new TimeoutError(timeout ?? 0, false);
    try {
      return await fn();
    } finally {
      this.release(weight);
    }
  }

  /**
   * Returns `releaseCount` permits and the count before. Throws
   * `SemaphoreFullError`, changing nothing, when that would pass the maximum.
   */
  release(releaseCount = 1): number {
    this.#handle.assertLive();
    if (!Number.isInteger(releaseCount) || releaseCount < 1) {
      throw new InvalidArgumentError('releaseCount', `expected an integer >= 1, got ${shown(releaseCount)}`);
    }
    const slots = this.#cell.slots;
    const maximum = slots[Slot.Maximum]!;
    for (;;) {
      const count = Atomics.load(slots, Slot.State);
      if (count + releaseCount > maximum) throw new SemaphoreFullError(maximum, releaseCount);
      if (Atomics.compareExchange(slots, Slot.State, count, count + releaseCount) === count) {
        if (Atomics.load(slots, Slot.Waiters) > 0) Atomics.notify(slots, Slot.State, Atomics.load(slots, BROADCAST) > 0 ? Infinity : releaseCount);
        return count;
      }
    }
  }

  /** @internal For `WaitHandle.waitAny/waitAll`: takes a permit if one is free, without waiting. */
  tryTakeForWait(): 'taken' | false {
    this.#handle.assertLive();
    return this.#tryTake(1) ? 'taken' : false;
  }

  /** @internal Gives back the permit `tryTakeForWait` took. */
  untakeForWait(): void {
    this.release(1);
  }

  /** @internal What crosses a thread boundary in place of this semaphore. */
  toShared(): SharedHandle {
    this.#handle.retainForCrossing();
    return shareCell(Kind.Semaphore, this.#cell, this.#name);
  }

  readonly #take = (): boolean => this.#tryTake(1);

  #tryTake(weight = 1): boolean {
    const slots = this.#cell.slots;
    for (let count = Atomics.load(slots, Slot.State); count >= weight; count = Atomics.load(slots, Slot.State)) {
      if (Atomics.compareExchange(slots, Slot.State, count, count - weight) === count) return true;
    }
    return false;
  }

  /** An async wait, stopped by `cancel()` too; `broadcast` when a release of fewer permits than waiters must still reach it. */
  async #wait(ready: () => boolean, broadcast: boolean, deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
    const slots = this.#cell.slots;
    if (broadcast) Atomics.add(slots, BROADCAST, 1);
    try {
      return await waitUntil(slots, Slot.State, Slot.Waiters, ready, deadline, this.#canceller.signalFor(signal));
    } finally {
      if (broadcast) Atomics.sub(slots, BROADCAST, 1);
    }
  }

  #weight(options: SemaphoreAcquireOptions | undefined): number {
    const { weight = 1 } = readOptions(options, ['weight']);
    const maximum = this.maximumCount;
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > maximum) {
      throw new InvalidArgumentError('weight', `expected an integer from 1 to the maximum count (${maximum}), got ${shown(weight)}`);
    }
    return weight;
  }
}

registerKind(Kind.Semaphore, Semaphore, (cell, { name }) => Semaphore.fromCell(cell, name));
