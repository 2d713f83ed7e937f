/**
 * ReaderWriterLock: many readers or one writer, writers first; an
 * upgradeable reader; recursion by policy (.NET's `ReaderWriterLockSlim`).
 *
 * ## Slots
 * ```
 *  STATE              shares inside (> 0), 0 free, -1 a writer inside
 *  OWNER              the writer's threadId + 1 while a writer is inside
 *  MAXIMUM (reused)   writers waiting: while > 0, new readers wait
 *  RECURSION (reused) EPOCH: bumped by every change that may let a sleeper in
 *  ABANDONED (reused) UPGRADER: the upgradeable reader's threadId + 1, or 0
 *  WAITERS            readers and writers asleep, so exits skip notify when none
 * ```
 *
 * ## Protocol
 * A reader enters by compare-exchanging STATE s → s + 1, only when s >= 0
 * and no writer waits. A writer first counts itself as waiting (from then on
 * no new reader enters), then enters by compare-exchanging 0 → -1. The
 * upgradeable reader is a reader that also holds UPGRADER (one at a time);
 * it upgrades by waiting as a writer for STATE to be 1 (itself alone) and
 * compare-exchanging 1 → -1; leaving the write lock puts its share back (1).
 *
 * Sleepers watch EPOCH, not STATE. A reader held back only by a waiting
 * writer sees STATE 0; if it slept on STATE, the writer could enter and leave
 * (0 → -1 → 0) and notify before the reader was asleep, and the reader would
 * then sleep on an unchanged 0 for good (an ABA lost wake-up, found by this
 * module's tests). EPOCH only grows, so a change can never look like none.
 * The last share out, a writer out, an upgrader out, and a writer giving up
 * (readers held back only by it must look again) bump EPOCH and wake every
 * sleeper.
 *
 * ## Threads and recursion
 * Each thread counts, for the blocking forms, what it holds of each lock
 * (read, upgradeable, write), and holds at most one share of STATE however
 * often it entered: re-entering never waits behind a writer that waits for
 * the thread itself. That count is what tells a recursion (refused under
 * `NoRecursion`, counted under `SupportsRecursion`) and a reader asking to
 * write (always refused: it would wait for itself forever). The async forms
 * cannot tell one task of a thread from another, so they count nothing: two
 * tasks of one thread are two callers, and they wait for each other.
 *
 * ## Guarantees
 * Writers never starve: once one waits, readers drain and no new one enters.
 * Readers can starve while writers keep coming (writer preference). If a
 * writer's or the upgrader's runspace dies inside, the pool frees what it
 * held; plain readers are counted, not owned, so a reader dying inside
 * leaves its share behind (avoid long reads in runspaces that may crash).
 *
 * @module
 */

import { isMainThread } from 'node:worker_threads';
import { InvalidArgumentError, InvalidOperationError, ObjectDisposedError, SynchronizationLockError, TimeoutError, shown } from '../errors.js';
import { Kind, newCell, Slot, type Cell } from './arena.js';
import type { WaitOptions } from './event-handle.js';
import { openExistingNamed, openNamed, tryOpenExistingNamed } from './named.js';
import { SELF } from './ownership.js';
import { WaitCanceller } from './cancel-waits.js';
import { HandleState } from './handles.js';
import { adoptCell, registerKind, shareCell, takeAdopted, type SharedHandle } from './shared-cells.js';
import { assertMayBlock, blockUntil, deadlineAndSignal, deadlineOf, waitUntil } from './waiting.js';
import { timeoutMs } from '../util/deadline.js';
import { cancelOptions, readOptions } from '../util/options.js';

const WRITERS_WAITING = Slot.Maximum;
const EPOCH = Slot.Recursion;
const UPGRADER = Slot.Abandoned;

/** How a thread may re-enter a lock it holds (.NET's `LockRecursionPolicy`). */
export type LockRecursionPolicy = 'NoRecursion' | 'SupportsRecursion';

/** Options of a new (or newly opened) `ReaderWriterLock`. */
export interface ReaderWriterLockOptions {
  /**
   * `'NoRecursion'` (default): a runspace entering a mode it already holds
   * gets `InvalidOperationError` (.NET's `LockRecursionException`).
   * `'SupportsRecursion'`: it enters again and must exit as often; reading
   * under one's own write lock is allowed too. A reader asking to write or
   * to become the upgradeable reader is refused either way.
   */
  readonly recursionPolicy?: LockRecursionPolicy;
}

/** What this thread holds of one lock through the blocking forms. */
interface ThreadHolds {
  read: number;
  upgradeable: number;
  write: number;
}

/** Per thread (this module is loaded once per thread), by cell id. */
const holdsOf = new Map<number, ThreadHolds>();

function recursionPolicy(options: unknown): LockRecursionPolicy {
  const { recursionPolicy: policy = 'NoRecursion' } = readOptions(options, ['recursionPolicy']);
  if (policy !== 'NoRecursion' && policy !== 'SupportsRecursion') {
    throw new InvalidArgumentError('recursionPolicy', `expected 'NoRecursion' or 'SupportsRecursion', got ${shown(policy)}`);
  }
  return policy;
}

/**
 * A reader-writer lock shared by every runspace and the main thread: any
 * number of readers, or one writer; a waiting writer blocks new readers so
 * writers never starve. One reader at a time may hold it upgradeable and
 * later write without letting go (`enterUpgradeableReadLock`).
 *
 * Blocking forms (`enterReadLock`, `enterUpgradeableReadLock`,
 * `enterWriteLock`, `tryEnter…`) are for runspaces and refused on the main
 * thread; `withReadLock`, `withWriteLock`, `acquireRead` and `acquireWrite`
 * never block an event loop.
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
  readonly #policy: LockRecursionPolicy;
  readonly #handle: HandleState;
  readonly #canceller = new WaitCanceller();

  constructor(options?: ReaderWriterLockOptions) {
    const adopted = takeAdopted();
    if (adopted !== undefined) {
      ({ cell: this.#cell, name: this.#name } = adopted);
      this.#policy = adopted.recursionPolicy ?? 'NoRecursion';
    } else {
      this.#policy = recursionPolicy(options);
      this.#cell = newCell(Kind.ReaderWriterLock);
      this.#name = null;
    }
    this.#slots = this.#cell.slots;
    this.#handle = new HandleState(this, this.#cell, 'ReaderWriterLock');
  }

  /** @internal */
  static fromCell(cell: Cell, name: string | null, policy: LockRecursionPolicy | undefined): ReaderWriterLock {
    return adoptCell(cell, name, () => new ReaderWriterLock(), { recursionPolicy: policy });
  }

  /** The lock of this name in this process, created when there is none; `options` apply to this handle. */
  static open(name: string, options?: ReaderWriterLockOptions): { lock: ReaderWriterLock; createdNew: boolean } {
    const policy = recursionPolicy(options);
    const found = openNamed(Kind.ReaderWriterLock, name, () => undefined);
    return { lock: ReaderWriterLock.fromCell(found.cell, found.name, policy), createdNew: found.createdNew };
  }

  static openExisting(name: string, options?: ReaderWriterLockOptions): ReaderWriterLock {
    const policy = recursionPolicy(options);
    const found = openExistingNamed(Kind.ReaderWriterLock, name);
    return ReaderWriterLock.fromCell(found.cell, found.name, policy);
  }

  static tryOpenExisting(name: string, options?: ReaderWriterLockOptions): ReaderWriterLock | undefined {
    const policy = recursionPolicy(options);
    const found = tryOpenExistingNamed(Kind.ReaderWriterLock, name);
    return found === undefined ? undefined : ReaderWriterLock.fromCell(found.cell, found.name, policy);
  }

  get name(): string | null {
    return this.#name;
  }

  get recursionPolicy(): LockRecursionPolicy {
    return this.#policy;
  }

  /** Threads (and async holders) inside in read or upgradeable mode right now (a snapshot). */
  get currentReadCount(): number {
    return Math.max(0, Atomics.load(this.#slots, Slot.State));
  }

  /** True when this thread holds the lock in read mode (through the blocking forms). */
  get isReadLockHeld(): boolean {
    return (this.#holds()?.read ?? 0) > 0;
  }

  /** True when this thread holds the lock upgradeable. */
  get isUpgradeableReadLockHeld(): boolean {
    return (this.#holds()?.upgradeable ?? 0) > 0;
  }

  /** True when this thread (a runspace, or an async task of the main thread) holds the write lock. */
  get isWriteLockHeld(): boolean {
    return Atomics.load(this.#slots, Slot.State) === -1 && this.#slots[Slot.Owner] === SELF;
  }

  /** Times this thread entered read mode and has not exited (more than 1 only under `SupportsRecursion`). */
  get recursiveReadCount(): number {
    return this.#holds()?.read ?? 0;
  }

  get recursiveUpgradeCount(): number {
    return this.#holds()?.upgradeable ?? 0;
  }

  get recursiveWriteCount(): number {
    return this.#holds()?.write ?? (this.isWriteLockHeld ? 1 : 0);
  }

  /** Writers waiting to enter (.NET's `WaitingWriteCount`): while any waits, new readers wait too. */
  get waitingWriteCount(): number {
    return Atomics.load(this.#slots, WRITERS_WAITING);
  }

  /** Blocks this runspace until it may read. */
  enterReadLock(): void {
    this.tryEnterReadLock(undefined);
  }

  /** Blocks this runspace until it may read (true) or `timeout` ms pass (false). */
  tryEnterReadLock(timeout?: number): boolean {
    const { holds, deadline } = this.#beginEntry('enterReadLock', 'await lock.acquireRead() or lock.withReadLock()', timeout);
    if (this.isWriteLockHeld) {
      // Reading under one's own write lock: .NET allows it only with recursion (LockRecursionException otherwise).
      this.#refuseUnlessRecursive(holds.write > 0, 'holds the write lock');
      return this.#entered(holds, 'read');
    }
    if (holds.read > 0) this.#refuseUnlessRecursive(true, 'holds the read lock');
    // The thread's share is already inside: entering again never waits behind a writer waiting for it.
    if (holds.read > 0 || holds.upgradeable > 0) return this.#entered(holds, 'read');
    return blockUntil(this.#slots, EPOCH, Slot.Waiters, this.#tryRead, deadline) && this.#entered(holds, 'read');
  }

  exitReadLock(): void {
    this.#handle.assertLive();
    const holds = this.#holds();
    if (holds !== undefined && holds.read > 0) {
      holds.read--;
      this.#leaveShareIfLast(holds);
      return;
    }
    // An async reader (acquireRead): it counted nothing in this thread.
    this.#exitShare('exitReadLock was called without a read lock held.');
  }

  /**
   * Blocks this runspace until it holds the lock upgradeable: reading, and
   * the only one who may later write without exiting first. One at a time;
   * plain readers share the lock with it.
   */
  enterUpgradeableReadLock(): void {
    this.tryEnterUpgradeableReadLock(undefined);
  }

  /** Blocks until it holds the lock upgradeable (true) or `timeout` ms pass (false). */
  tryEnterUpgradeableReadLock(timeout?: number): boolean {
    const { holds, deadline } = this.#beginEntry('enterUpgradeableReadLock', 'a runspace: an async task cannot be told from another of its thread', timeout);
    if (holds.read > 0 && holds.upgradeable === 0) {
      throw new InvalidOperationError('This thread holds the read lock; a reader cannot become the upgradeable reader (it would wait for itself). Exit the read lock first.');
    }
    if (holds.upgradeable > 0 || this.isWriteLockHeld) {
      this.#refuseUnlessRecursive(holds.upgradeable > 0 || holds.write > 0, holds.upgradeable > 0 ? 'holds the lock upgradeable' : 'holds the write lock');
      if (holds.upgradeable === 0 && Atomics.compareExchange(this.#slots, UPGRADER, 0, SELF) !== 0) {
        throw new InvalidOperationError('Another thread holds the lock upgradeable.');
      }
      return this.#entered(holds, 'upgradeable');
    }
    return blockUntil(this.#slots, EPOCH, Slot.Waiters, this.#tryUpgradeable, deadline) && this.#entered(holds, 'upgradeable');
  }

  exitUpgradeableReadLock(): void {
    this.#handle.assertLive();
    const holds = this.#holds();
    if (holds === undefined || holds.upgradeable === 0) throw new SynchronizationLockError('exitUpgradeableReadLock was called without the lock held upgradeable.');
    if (holds.write > 0) throw new SynchronizationLockError('Exit the write lock before the upgradeable read lock.');
    if (--holds.upgradeable > 0) return;
    Atomics.store(this.#slots, UPGRADER, 0);
    this.#leaveShareIfLast(holds, true);
  }

  /** Blocks this runspace until it is the only writer, with no reader inside (the upgradeable reader: none but itself). */
  enterWriteLock(): void {
    this.tryEnterWriteLock(undefined);
  }

  /** Blocks this runspace until it may write (true) or `timeout` ms pass (false). */
  tryEnterWriteLock(timeout?: number): boolean {
    const { holds, deadline } = this.#beginEntry('enterWriteLock', 'await lock.acquireWrite() or lock.withWriteLock()', timeout);
    if (holds.read > 0 && holds.upgradeable === 0 && !this.isWriteLockHeld) {
      throw new InvalidOperationError('This thread holds the read lock; asking for the write lock would wait for itself forever. Exit the read lock first, or enter upgradeable to read before writing.');
    }
    if (this.isWriteLockHeld) {
      this.#refuseUnlessRecursive(holds.write > 0, 'holds the write lock');
      return this.#entered(holds, 'write');
    }
    const upgrading = holds.upgradeable > 0;
    Atomics.add(this.#slots, WRITERS_WAITING, 1);
    let entered = false;
    try {
      entered = blockUntil(this.#slots, EPOCH, Slot.Waiters, upgrading ? this.#tryUpgrade : this.#tryWrite, deadline);
    } finally {
      this.#stopWaitingAsWriter(entered);
    }
    return entered && this.#entered(holds, 'write');
  }

  exitWriteLock(): void {
    this.#handle.assertLive();
    const slots = this.#slots;
    if (!this.isWriteLockHeld) throw new SynchronizationLockError('exitWriteLock was called by code that does not hold the write lock.');
    const holds = this.#holds();
    if (holds !== undefined && holds.write > 1) {
      holds.write--;
      return;
    }
    if (holds !== undefined) holds.write = 0;
    slots[Slot.Owner] = 0;
    // The upgradeable reader, or a writer that entered read under its own lock, is a reader again.
    const stillReading = holds !== undefined && (holds.upgradeable > 0 || holds.read > 0);
    Atomics.store(slots, Slot.State, stillReading ? 1 : 0);
    if (holds !== undefined) this.#forgetIfEmpty(holds);
    this.#wakeAll();
  }

  /** Waits without blocking until it may read: true, or false on timeout; rejects on abort. */
  acquireRead(options?: WaitOptions): Promise<boolean> {
    try {
      this.#handle.assertLive();
      const [deadline, signal] = deadlineAndSignal(options);
      return waitUntil(this.#slots, EPOCH, Slot.Waiters, this.#tryRead, deadline, this.#canceller.signalFor(signal));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Waits without blocking until it may write: true, or false on timeout; rejects on abort. */
  async acquireWrite(options?: WaitOptions): Promise<boolean> {
    this.#handle.assertLive();
    // No recursion check here: another async task of this thread holding the
    // lock is a reason to wait, not an error.
    const [deadline, signal] = deadlineAndSignal(options);
    Atomics.add(this.#slots, WRITERS_WAITING, 1);
    let entered = false;
    try {
      entered = await waitUntil(this.#slots, EPOCH, Slot.Waiters, this.#tryWrite, deadline, this.#canceller.signalFor(signal));
      return entered;
    } finally {
      this.#stopWaitingAsWriter(entered);
    }
  }

  /** Runs `fn` holding a read lock, released afterwards whatever happens. Throws `TimeoutError` on timeout. */
  async withReadLock<T>(fn: () => T | Promise<T>, options?: WaitOptions): Promise<T> {
    this.#handle.assertLive();
    if (!(await this.acquireRead(options))) throw new TimeoutError(cancelOptions(options).timeout ?? 0, false);
    try {
      return await fn();
    } finally {
      this.#exitShare('the read lock was released twice');
    }
  }

  /** Runs `fn` holding the write lock, released afterwards whatever happens. Throws `TimeoutError` on timeout. */
  async withWriteLock<T>(fn: () => T | Promise<T>, options?: WaitOptions): Promise<T> {
    this.#handle.assertLive();
    if (!(await this.acquireWrite(options))) throw new TimeoutError(cancelOptions(options).timeout ?? 0, false);
    try {
      return await fn();
    } finally {
      this.exitWriteLock();
    }
  }

  /**
   * Disposes this object (also `using`): pending async waits reject (`OperationCancelledError`,
   * its reason an `ObjectDisposedError`) and later calls throw `ObjectDisposedError`; a name is freed once every object
   * viewing it, in any thread, is disposed or collected. What this thread
   * holds stays held: exit it first.
   */
  dispose(): void {
    if (this.#handle.disposed) return;
    this.#canceller.cancel(new ObjectDisposedError('ReaderWriterLock'));
    this.#handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal */
  toShared(): SharedHandle {
    this.#handle.retainForCrossing();
    return shareCell(Kind.ReaderWriterLock, this.#cell, this.#name, { recursionPolicy: this.#policy });
  }

  readonly #tryRead = (): boolean => {
    const slots = this.#slots;
    const readers = Atomics.load(slots, Slot.State);
    return readers >= 0 && Atomics.load(slots, WRITERS_WAITING) === 0 && Atomics.compareExchange(slots, Slot.State, readers, readers + 1) === readers;
  };

  /** A share, then the upgrader's place; the share is given back when another holds the place. */
  readonly #tryUpgradeable = (): boolean => {
    const slots = this.#slots;
    if (Atomics.load(slots, UPGRADER) !== 0 || !this.#tryRead()) return false;
    if (Atomics.compareExchange(slots, UPGRADER, 0, SELF) === 0) return true;
    this.#exitShare('internal: upgradeable share lost');
    return false;
  };

  readonly #tryWrite = (): boolean => {
    if (Atomics.compareExchange(this.#slots, Slot.State, 0, -1) !== 0) return false;
    this.#slots[Slot.Owner] = SELF;
    return true;
  };

  /** The upgradeable reader writes once its share is the only one inside. */
  readonly #tryUpgrade = (): boolean => {
    if (Atomics.compareExchange(this.#slots, Slot.State, 1, -1) !== 1) return false;
    this.#slots[Slot.Owner] = SELF;
    return true;
  };

  #holds(): ThreadHolds | undefined {
    return holdsOf.get(this.#slots[Slot.Id]!);
  }

  /**
   * What every blocking entry checks first (a live object, not the main
   * thread, a valid timeout), then what this thread holds, to enter with:
   * recorded only once the entry succeeds ({@link #entered}).
   */
  #beginEntry(method: string, alternative: string, timeout: number | undefined): { holds: ThreadHolds; deadline: number } {
    this.#handle.assertLive();
    if (isMainThread) assertMayBlock(`ReaderWriterLock.${method}`, alternative);
    const deadline = deadlineOf(timeoutMs('timeout', timeout));
    const holds = this.#holds() ?? { read: 0, upgradeable: 0, write: 0 };
    // An async writer of this thread (acquireWrite) holds the lock without a count here.
    if (holds.write === 0 && this.isWriteLockHeld && holds.read === 0 && holds.upgradeable === 0) {
      throw new InvalidOperationError('This thread already holds the write lock through acquireWrite/withWriteLock; entering the lock again from the same thread would wait for itself forever.');
    }
    return { holds, deadline };
  }

  #refuseUnlessRecursive(allowedWithRecursion: boolean, what: string): void {
    if (this.#policy === 'SupportsRecursion' && allowedWithRecursion) return;
    throw new InvalidOperationError(
      `This thread already ${what}; entering again would wait for itself forever. Open the lock with { recursionPolicy: 'SupportsRecursion' } to re-enter (LockRecursionException in .NET).`,
    );
  }

  /** After a read or upgradeable exit: the thread's share leaves when it holds nothing more that needs it. */
  #leaveShareIfLast(holds: ThreadHolds, wakeUpgraders = false): void {
    if (holds.read > 0 || holds.upgradeable > 0 || holds.write > 0) {
      if (wakeUpgraders) this.#wakeAll();
      return;
    }
    this.#forgetIfEmpty(holds);
    this.#exitShare('internal: share already gone');
    if (wakeUpgraders) this.#wakeAll();
  }

  #exitShare(message: string): void {
    const slots = this.#slots;
    for (;;) {
      const readers = Atomics.load(slots, Slot.State);
      if (readers <= 0) throw new SynchronizationLockError(message);
      if (Atomics.compareExchange(slots, Slot.State, readers, readers - 1) === readers) {
        // The last share out lets a writer in; the second-last lets an upgrader upgrade.
        if (readers <= 2) this.#wakeAll();
        return;
      }
    }
  }

  #entered(holds: ThreadHolds, mode: keyof ThreadHolds): true {
    holds[mode]++;
    holdsOf.set(this.#slots[Slot.Id]!, holds);
    return true;
  }

  #forgetIfEmpty(holds: ThreadHolds): void {
    if (holds.read === 0 && holds.upgradeable === 0 && holds.write === 0) holdsOf.delete(this.#slots[Slot.Id]!);
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

/**
 * A runspace died inside: free what it owned (the write lock, the
 * upgradeable reader's place and share) and wake everyone to look again.
 * Plain readers are counted, not owned: their shares stay.
 */
function recoverOwner(slots: Int32Array, deadOwner: number): boolean {
  let recovered = false;
  if (Atomics.load(slots, Slot.State) === -1 && Atomics.compareExchange(slots, Slot.Owner, deadOwner, 0) === deadOwner) {
    Atomics.store(slots, Slot.State, 0);
    // An upgraded writer's share went with the write lock.
    Atomics.compareExchange(slots, UPGRADER, deadOwner, 0);
    recovered = true;
  } else if (Atomics.compareExchange(slots, UPGRADER, deadOwner, 0) === deadOwner) {
    for (let readers = Atomics.load(slots, Slot.State); readers > 0; readers = Atomics.load(slots, Slot.State)) {
      if (Atomics.compareExchange(slots, Slot.State, readers, readers - 1) === readers) break;
    }
    recovered = true;
  }
  if (recovered) {
    Atomics.add(slots, EPOCH, 1);
    Atomics.notify(slots, EPOCH);
  }
  return recovered;
}

registerKind(Kind.ReaderWriterLock, ReaderWriterLock, (cell, { name, recursionPolicy: policy }) => ReaderWriterLock.fromCell(cell, name, policy), recoverOwner);
