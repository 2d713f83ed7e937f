/**
 * Semaphore: .NET's `System.Threading.Semaphore` over shared memory.
 *
 * ## Slots
 * STATE is the current count (0..MAXIMUM); WAITERS counts threads and async
 * tasks waiting, so `release` skips `Atomics.notify` when nobody waits.
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
import { InvalidArgumentError, SemaphoreFullError, shown } from '../errors.js';
import { Kind, newCell, Slot, type Cell } from './arena.js';
import { openExistingNamed, openNamed, tryOpenExistingNamed } from './named.js';
import { adoptCell, registerKind, shareCell, takeAdopted, type SharedHandle } from './shared-cells.js';
import { assertMayBlock, blockUntil, deadlineAndSignal, deadlineOf, waitUntil } from './waiting.js';
import { timeoutMs } from '../util/deadline.js';
import type { MutexAcquireOptions } from './mutex.js';

const TAKEN: Promise<boolean> = Promise.resolve(true);

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

  constructor(initialCount: number, maximumCount: number) {
    const adopted = takeAdopted();
    if (adopted !== undefined) {
      ({ cell: this.#cell, name: this.#name } = adopted);
      return;
    }
    assertCounts(initialCount, maximumCount);
    this.#cell = newCell(Kind.Semaphore);
    this.#cell.slots[Slot.Maximum] = maximumCount;
    this.#cell.slots[Slot.State] = initialCount;
    this.#name = null;
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
    if (isMainThread) assertMayBlock('Semaphore.waitOne', 'await semaphore.acquire()');
    if (this.#tryTake()) return true;
    return blockUntil(this.#cell.slots, Slot.State, Slot.Waiters, this.#take, deadlineOf(timeoutMs('timeout', timeout)));
  }

  /** Takes a permit without blocking: true when taken, false on timeout; rejects on abort. */
  acquire(options?: MutexAcquireOptions): Promise<boolean> {
    if (options === undefined && this.#tryTake()) return TAKEN;
    try {
      return waitUntil(this.#cell.slots, Slot.State, Slot.Waiters, this.#take, ...deadlineAndSignal(options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Returns `releaseCount` permits and the count before. Throws
   * `SemaphoreFullError`, changing nothing, when that would pass the maximum.
   */
  release(releaseCount = 1): number {
    if (!Number.isInteger(releaseCount) || releaseCount < 1) {
      throw new InvalidArgumentError('releaseCount', `expected an integer >= 1, got ${shown(releaseCount)}`);
    }
    const slots = this.#cell.slots;
    const maximum = slots[Slot.Maximum]!;
    for (;;) {
      const count = Atomics.load(slots, Slot.State);
      if (count + releaseCount > maximum) throw new SemaphoreFullError(maximum, releaseCount);
      if (Atomics.compareExchange(slots, Slot.State, count, count + releaseCount) === count) {
        if (Atomics.load(slots, Slot.Waiters) > 0) Atomics.notify(slots, Slot.State, releaseCount);
        return count;
      }
    }
  }

  /** @internal What crosses a thread boundary in place of this semaphore. */
  toShared(): SharedHandle {
    return shareCell(Kind.Semaphore, this.#cell, this.#name);
  }

  readonly #take = (): boolean => this.#tryTake();

  #tryTake(): boolean {
    const slots = this.#cell.slots;
    for (let count = Atomics.load(slots, Slot.State); count > 0; count = Atomics.load(slots, Slot.State)) {
      if (Atomics.compareExchange(slots, Slot.State, count, count - 1) === count) return true;
    }
    return false;
  }
}

registerKind(Kind.Semaphore, Semaphore, (cell, { name }) => Semaphore.fromCell(cell, name));
