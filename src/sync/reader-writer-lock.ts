/**
 * ReaderWriterLock: many readers or one writer, writers first.
 *
 * ## Slots
 * ```
 *  STATE            readers inside (> 0), 0 free, -1 a writer inside
 *  OWNER            the writer's threadId + 1 while a writer is inside
 *  MAXIMUM (reused) writers waiting: while > 0, new readers wait
 *  RECURSION (reused) EPOCH: bumped by every change that may let a sleeper in
 *  WAITERS          readers and writers asleep, so exits skip notify when none
 * ```
 *
 * ## Protocol
 * A reader enters by compare-exchanging STATE s → s + 1, only when s >= 0
 * and no writer waits. A writer first counts itself as waiting (from then on
 * no new reader enters), then enters by compare-exchanging 0 → -1.
 *
 * Sleepers watch EPOCH, not STATE. A reader held back only by a waiting
 * writer sees STATE 0; if it slept on STATE, the writer could enter and leave
 * (0 → -1 → 0) and notify before the reader was asleep, and the reader would
 * then sleep on an unchanged 0 for good (an ABA lost wake-up, found by this
 * module's tests). EPOCH only grows, so a change can never look like none.
 * The last reader out, a writer out, and a writer giving up (readers held
 * back only by it must look again) bump EPOCH and wake every sleeper.
 *
 * ## Guarantees
 * Writers never starve: once one waits, readers drain and no new one enters.
 * Readers can starve while writers keep coming (writer preference). Not
 * reentrant: a runspace blocking for the write lock it holds throws rather
 * than deadlock (async callers of one thread are told apart only by waiting). If a writer's runspace dies
 * inside, the pool frees the lock; readers are counted, not owned, so a
 * reader dying inside leaves its count behind (avoid long reads in runspaces
 * that may crash).
 *
 * @module
 */

import { isMainThread } from 'node:worker_threads';
import { InvalidOperationError, SynchronizationLockError, TimeoutError } from '../errors.js';
import { Kind, newCell, Slot, type Cell } from './arena.js';
import type { WaitOptions } from './event-handle.js';
import { openExistingNamed, openNamed, tryOpenExistingNamed } from './named.js';
import { SELF } from './ownership.js';
import { adoptCell, registerKind, shareCell, takeAdopted, type SharedHandle } from './shared-cells.js';
import { assertMayBlock, blockUntil, deadlineAndSignal, deadlineOf, waitUntil } from './waiting.js';
import { timeoutMs } from '../util/deadline.js';
import { cancelOptions } from '../util/options.js';

const WRITERS_WAITING = Slot.Maximum;
const EPOCH = Slot.Recursion;

/**
 * A reader-writer lock shared by every runspace and the main thread: any
 * number of readers, or one writer; a waiting writer blocks new readers so
 * writers never starve.
 *
 * Blocking forms (`enterReadLock`, `enterWriteLock`, `tryEnter…`) are for
 * runspaces and refused on the main thread; `withReadLock`, `withWriteLock`,
 * `acquireRead` and `acquireWrite` never block an event loop.
 *
 * @example
 * ```ts
 * const cacheLock = new ReaderWriterLock();
 * const value = await cacheLock.withReadLock(() => cache.get(key));
 * await cacheLock.withWriteLock(() => cache.set(key, fresh));
 * ```
 */
export class ReaderWriterLock {
  readonly #cell: Cell;
  readonly #slots: Int32Array;
  readonly #name: string | null;

  constructor() {
    const adopted = takeAdopted();
    if (adopted !== undefined) {
      ({ cell: this.#cell, name: this.#name } = adopted);
    } else {
      this.#cell = newCell(Kind.ReaderWriterLock);
      this.#name = null;
    }
    this.#slots = this.#cell.slots;
  }

  /** @internal */
  static fromCell(cell: Cell, name: string | null): ReaderWriterLock {
    return adoptCell(cell, name, () => new ReaderWriterLock());
  }

  static open(name: string): { lock: ReaderWriterLock; createdNew: boolean } {
    const found = openNamed(Kind.ReaderWriterLock, name, () => undefined);
    return { lock: ReaderWriterLock.fromCell(found.cell, found.name), createdNew: found.createdNew };
  }

  static openExisting(name: string): ReaderWriterLock {
    const found = openExistingNamed(Kind.ReaderWriterLock, name);
    return ReaderWriterLock.fromCell(found.cell, found.name);
  }

  static tryOpenExisting(name: string): ReaderWriterLock | undefined {
    const found = tryOpenExistingNamed(Kind.ReaderWriterLock, name);
    return found === undefined ? undefined : ReaderWriterLock.fromCell(found.cell, found.name);
  }

  get name(): string | null {
    return this.#name;
  }

  /** Readers inside right now (a snapshot). */
  get currentReadCount(): number {
    return Math.max(0, Atomics.load(this.#slots, Slot.State));
  }

  get isWriteLockHeld(): boolean {
    return Atomics.load(this.#slots, Slot.State) === -1;
  }

  /** Blocks this runspace until it may read. */
  enterReadLock(): void {
    this.tryEnterReadLock(undefined);
  }

  /** Blocks this runspace until it may read (true) or `timeout` ms pass (false). */
  tryEnterReadLock(timeout?: number): boolean {
    if (isMainThread) assertMayBlock('ReaderWriterLock.enterReadLock', 'await lock.acquireRead() or lock.withReadLock()');
    // Reading under one's own write lock would wait for oneself forever (.NET: LockRecursionException).
    this.#refuseRecursion();
    return blockUntil(this.#slots, EPOCH, Slot.Waiters, this.#tryRead, deadlineOf(timeoutMs('timeout', timeout)));
  }

  exitReadLock(): void {
    const slots = this.#slots;
    for (;;) {
      const readers = Atomics.load(slots, Slot.State);
      if (readers <= 0) throw new SynchronizationLockError('exitReadLock was called without a read lock held.');
      if (Atomics.compareExchange(slots, Slot.State, readers, readers - 1) === readers) {
        if (readers === 1) this.#wakeAll();
        return;
      }
    }
  }

  /** Blocks this runspace until it is the only writer, with no reader inside. */
  enterWriteLock(): void {
    this.tryEnterWriteLock(undefined);
  }

  /** Blocks this runspace until it may write (true) or `timeout` ms pass (false). */
  tryEnterWriteLock(timeout?: number): boolean {
    if (isMainThread) assertMayBlock('ReaderWriterLock.enterWriteLock', 'await lock.acquireWrite() or lock.withWriteLock()');
    this.#refuseRecursion();
    const deadline = deadlineOf(timeoutMs('timeout', timeout));
    Atomics.add(this.#slots, WRITERS_WAITING, 1);
    let entered = false;
    try {
      entered = blockUntil(this.#slots, EPOCH, Slot.Waiters, this.#tryWrite, deadline);
      return entered;
    } finally {
      this.#stopWaitingAsWriter(entered);
    }
  }

  exitWriteLock(): void {
    const slots = this.#slots;
    if (Atomics.load(slots, Slot.State) !== -1 || slots[Slot.Owner] !== SELF) {
      throw new SynchronizationLockError('exitWriteLock was called by code that does not hold the write lock.');
    }
    slots[Slot.Owner] = 0;
    Atomics.store(slots, Slot.State, 0);
    this.#wakeAll();
  }

  /** Waits without blocking until it may read: true, or false on timeout; rejects on abort. */
  acquireRead(options?: WaitOptions): Promise<boolean> {
    try {
      return waitUntil(this.#slots, EPOCH, Slot.Waiters, this.#tryRead, ...deadlineAndSignal(options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Waits without blocking until it may write: true, or false on timeout; rejects on abort. */
  async acquireWrite(options?: WaitOptions): Promise<boolean> {
    // No recursion check here: another async task of this thread holding the
    // lock is a reason to wait, not an error.
    const [deadline, signal] = deadlineAndSignal(options);
    Atomics.add(this.#slots, WRITERS_WAITING, 1);
    let entered = false;
    try {
      entered = await waitUntil(this.#slots, EPOCH, Slot.Waiters, this.#tryWrite, deadline, signal);
      return entered;
    } finally {
      this.#stopWaitingAsWriter(entered);
    }
  }

  /** Runs `fn` holding a read lock, released afterwards whatever happens. Throws `TimeoutError` on timeout. */
  async withReadLock<T>(fn: () => T | Promise<T>, options?: WaitOptions): Promise<T> {
    if (!(await this.acquireRead(options))) throw new TimeoutError(cancelOptions(options).timeout ?? 0, false);
    try {
      return await fn();
    } finally {
      this.exitReadLock();
    }
  }

  /** Runs `fn` holding the write lock, released afterwards whatever happens. Throws `TimeoutError` on timeout. */
  async withWriteLock<T>(fn: () => T | Promise<T>, options?: WaitOptions): Promise<T> {
    if (!(await this.acquireWrite(options))) throw new TimeoutError(cancelOptions(options).timeout ?? 0, false);
    try {
      return await fn();
    } finally {
      this.exitWriteLock();
    }
  }

  /** @internal */
  toShared(): SharedHandle {
    return shareCell(Kind.ReaderWriterLock, this.#cell, this.#name);
  }

  readonly #tryRead = (): boolean => {
    const slots = this.#slots;
    const readers = Atomics.load(slots, Slot.State);
    return readers >= 0 && Atomics.load(slots, WRITERS_WAITING) === 0 && Atomics.compareExchange(slots, Slot.State, readers, readers + 1) === readers;
  };

  readonly #tryWrite = (): boolean => {
    if (Atomics.compareExchange(this.#slots, Slot.State, 0, -1) !== 0) return false;
    this.#slots[Slot.Owner] = SELF;
    return true;
  };

  #refuseRecursion(): void {
    if (Atomics.load(this.#slots, Slot.State) === -1 && this.#slots[Slot.Owner] === SELF) {
      throw new InvalidOperationError('This thread already holds the write lock; entering the lock again, to read or to write, would wait for itself forever: a ReaderWriterLock is not reentrant.');
    }
  }

  #stopWaitingAsWriter(entered: boolean): void {
    Atomics.sub(this.#slots, WRITERS_WAITING, 1);
    // Readers held back only by this writer must look again.
    if (!entered) this.#wakeAll();
  }

  #wakeAll(): void {
    Atomics.add(this.#slots, EPOCH, 1);
    if (Atomics.load(this.#slots, Slot.Waiters) > 0) Atomics.notify(this.#slots, EPOCH);
  }
}

/** A writer died inside: free the lock and wake everyone to look again (readers are counted, not owned). */
function recoverWriter(slots: Int32Array, deadOwner: number): boolean {
  if (Atomics.load(slots, Slot.State) !== -1 || Atomics.compareExchange(slots, Slot.Owner, deadOwner, 0) !== deadOwner) return false;
  Atomics.store(slots, Slot.State, 0);
  Atomics.add(slots, EPOCH, 1);
  Atomics.notify(slots, EPOCH);
  return true;
}

registerKind(Kind.ReaderWriterLock, ReaderWriterLock, (cell, { name }) => ReaderWriterLock.fromCell(cell, name), recoverWriter);
