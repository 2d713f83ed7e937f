/**
 * Mutex: .NET's `System.Threading.Mutex` over shared memory.
 *
 * ## The lock word (cell slot STATE)
 * Unfair (the default, "barging": a thread arriving as the lock is released
 * may take it before a woken waiter, many times faster under contention):
 * the futex mutex with its owner in the word, see `owner-word-lock.ts`.
 * Fair: the hand-off protocol of `handoff-lock.ts`.
 *
 * ## Owner, recursion, abandonment
 * The lock word names the owning thread (a fair mutex keeps it in OWNER);
 * RECURSION counts acquisitions beyond the first. A runspace dying holding
 * it is recovered by the pool, with ABANDONED set for the next owner. See
 * `ownership.ts` for how async flows of one thread are told apart.
 *
 * ## Machine-wide (`Global\`) mutexes
 * An OS file lock behind the in-process lock (`machine/file-lock.ts`): only
 * one thread of a process asks the OS; a dead process's id left in the lock
 * file makes the next owner, in any process, get `AbandonedMutexError`.
 *
 * @module
 */

import { AbandonedMutexError, InvalidArgumentError, ObjectDisposedError, OperationCancelledError, SynchronizationLockError, TimeoutError, WaitHandleNotFoundError } from '../errors.js';
import { Kind, namedExists, newCell, Slot, type Cell } from './arena.js';
import { lockFairAsync, lockFairBlocking, recoverFair, unlockFair } from './handoff-lock.js';
import { lockOwnedAsync, lockOwnedBlocking, OWNED, recoverOwned, unlockOwned, watchUnlockOwned } from './owner-word-lock.js';
import { WaitCanceller } from './cancel-waits.js';
import { HandleState } from './handles.js';
import { FileLock, isOpenAnywhere } from './machine/file-lock.js';
import { isGlobalName, machineTarget, type LockFile } from './machine/lock-directory.js';
import { openExistingNamed, openNamed, openNamedKey, tryOpenExistingNamed } from './named.js';
import { currentFlowHolder, flowHolds, localCell, runHolding, SELF, type Holder, type LocalCell } from './ownership.js';
import { adoptCell, registerKind, shareCell, takeAdopted, type SharedHandle } from './shared-cells.js';
import { isMainThread } from 'node:worker_threads';
import { assertMayBlock, deadlineAndSignal, deadlineOf, pollUntil, waitTurn } from './waiting.js';
import { timeoutMs } from '../util/deadline.js';
import { cancelOptions, readOptions } from '../util/options.js';
import type { LockInfo, MutexAcquireOptions, MutexOpenOptions, MutexOptions, WithLockOptions } from './mutex-options.js';

export type { LockInfo, MutexAcquireOptions, MutexOpenOptions, MutexOptions, WithLockOptions } from './mutex-options.js';

const ACQUIRED: Promise<boolean> = Promise.resolve(true);

/**
 * A mutual-exclusion lock shared by every runspace and the main thread.
 *
 * - **Reentrant** for its owner: the owning thread (`waitOne`) or the async
 *   flow inside `withLock` may acquire again and must release as often.
 *   Unrelated async tasks of one thread exclude each other.
 * - **Unfair** (barging), for throughput; see the module notes.
 * - **Owner death**: the next acquirer owns it and gets `AbandonedMutexError`.
 * - **Timeouts** leave nothing held; an aborted `acquire` leaves no waiter.
 * - **Blocking**: `waitOne` blocks its thread, so it is refused on the main
 *   thread; `acquire` and `withLock` never block an event loop.
 * - **Named** (`Mutex.open`): the same name is the same lock in every runspace
 *   of the process. Passing a mutex as a `using` value or argument gives the
 *   runspace the same lock.
 * - **Machine-wide** (`Mutex.open('Global\\name')`): the same lock in every
 *   process of the machine, on an OS file lock the kernel lets go when its
 *   holder dies. The same API; waits for another process poll, so they can
 *   time out or be cancelled and leave nothing behind.
 *
 * @example
 * ```ts
 * import { readFile, writeFile } from 'node:fs/promises';
 *
 * const { mutex } = Mutex.open('Local\\status-file');
 * await mutex.withLock(async () => {
 *   const status = JSON.parse(await readFile(statusPath, 'utf8'));
 *   await writeFile(statusPath, JSON.stringify({ ...status, done: true }));
 * });
 * ```
 */
export class Mutex {
  readonly #cell: Cell;
  readonly #slots: Int32Array;
  readonly #local: LocalCell;
  readonly #name: string | null;
  readonly #fair: boolean;
  /** The lock word this thread writes to take the free lock: itself, or 1 in the fair protocol. */
  readonly #taken: number;
  /** The machine-wide half, for a `Global\` mutex. */
  #machine: FileLock | undefined;
  #lockFile: LockFile | undefined;
  readonly #canceller = new WaitCanceller();
  readonly #handle: HandleState;

  /** An unnamed mutex; pass it to runspaces as a `using` value or argument. */
  constructor(initiallyOwned = false, options: MutexOptions = {}) {
    const { fair } = readOptions(options, ['fair']);
    const adopted = takeAdopted();
    if (adopted !== undefined) {
      ({ cell: this.#cell, name: this.#name } = adopted);
    } else {
      this.#cell = newCell(Kind.Mutex);
      this.#cell.slots[Slot.Maximum] = fair === true ? 1 : 0;
      this.#name = null;
    }
    this.#slots = this.#cell.slots;
    this.#handle = new HandleState(this, this.#cell, 'Mutex');
    this.#fair = this.#slots[Slot.Maximum] === 1;
    this.#taken = this.#fair ? 1 : OWNED;
    this.#local = localCell(this.#slots[Slot.Id]!);
    if (initiallyOwned) this.#takeFree('thread');
  }

  /** @internal Rebuilds a mutex around a cell that came from another thread or the arena. */
  static fromCell(cell: Cell, name: string | null, lockFile?: LockFile): Mutex {
    const mutex = adoptCell(cell, name, () => new Mutex());
    if (lockFile !== undefined) {
      mutex.#machine = FileLock.forPath(lockFile.path, lockFile.private);
      mutex.#lockFile = lockFile;
    }
    return mutex;
  }

  /**
   * Opens the mutex of this name, creating it if needed. `initiallyOwned` and
   * `fair` take effect only when this call created it (`createdNew`), as in
   * .NET. `Local\` and bare names are the same: one lock for every runspace of
   * the process. A `Global\` name is one lock for every process of the
   * machine (see {@link MutexOpenOptions.lockDirectory}); it is created new
   * when no other process has it open, and it cannot be `fair`.
   *
   * @example
   * ```ts
   * const { mutex } = Mutex.open('Global\\deployment-status');
   * await mutex.withLock(async () => {
   *   // read the status file, change it, write it back: no other process does meanwhile
   * });
   * ```
   */
  static open(name: string, options: MutexOpenOptions = {}): { mutex: Mutex; createdNew: boolean } {
    const read = readOptions(options, ['fair', 'initiallyOwned', 'lockDirectory']) as MutexOpenOptions;
    if (isGlobalName(name)) return Mutex.#openMachine(name, read);
    const found = openNamed(Kind.Mutex, name, (slots) => {
      slots[Slot.Maximum] = read.fair ? 1 : 0;
      if (read.initiallyOwned) {
        slots[Slot.State] = read.fair ? 1 : OWNED;
        if (read.fair) slots[Slot.Owner] = SELF;
      }
    });
    const mutex = Mutex.fromCell(found.cell, found.name);
    if (found.createdNew && read.initiallyOwned) mutex.#local.holder = 'thread';
    return { mutex, createdNew: found.createdNew };
  }

  static #openMachine(name: string, options: MutexOpenOptions): { mutex: Mutex; createdNew: boolean } {
    if (options.fair) throw new InvalidArgumentError('fair', 'a Global\\ mutex cannot hand ownership in order across processes; open it without fair');
    const target = machineTarget(name, options.lockDirectory);
    const found = openNamedKey(Kind.Mutex, target.key, name, () => undefined);
    const mutex = Mutex.fromCell(found.cell, target.displayName, target.lockFile);
    let createdNew = found.createdNew && mutex.#machine!.firstOpener;
    // Created new, so nobody else can hold it, unless another process opened
    // it in the meantime: then it was not new after all.
    if (createdNew && options.initiallyOwned) {
      createdNew = Atomics.compareExchange(mutex.#slots, Slot.State, 0, OWNED) === 0 && mutex.#tryHoldMachine(mutex.#machine!);
    }
    return { mutex, createdNew };
  }

  /**
   * Opens an existing named mutex; throws `WaitHandleNotFoundError` when there
   * is none. A `Global\` mutex exists while any process has it open.
   */
  static openExisting(name: string, options: Pick<MutexOpenOptions, 'lockDirectory'> = {}): Mutex {
    if (!isGlobalName(name)) {
      const found = openExistingNamed(Kind.Mutex, name);
      return Mutex.fromCell(found.cell, found.name);
    }
    const mutex = Mutex.tryOpenExisting(name, options);
    if (mutex === undefined) throw new WaitHandleNotFoundError(name);
    return mutex;
  }

  /** Opens an existing named mutex, or returns undefined. */
  static tryOpenExisting(name: string, options: Pick<MutexOpenOptions, 'lockDirectory'> = {}): Mutex | undefined {
    options = readOptions(options, ['lockDirectory']) as Pick<MutexOpenOptions, 'lockDirectory'>;
    if (isGlobalName(name)) {
      const target = machineTarget(name, options.lockDirectory);
      if (!namedExists(target.key) && !isOpenAnywhere(target.lockFile.path)) return undefined;
      return Mutex.#openMachine(name, options).mutex;
    }
    const found = tryOpenExistingNamed(Kind.Mutex, name);
    return found === undefined ? undefined : Mutex.fromCell(found.cell, found.name);
  }

  /** The name, without a `Local\` prefix (a machine-wide one keeps `Global\`); null for an unnamed mutex. */
  get name(): string | null {
    return this.#name;
  }

  /** True for a machine-wide (`Global\`) mutex. */
  get machineWide(): boolean {
    return this.#machine !== undefined;
  }

  /** True when ownership goes to the longest waiter (see `MutexOptions.fair`). */
  get fair(): boolean {
    return this.#fair;
  }

  get #id(): number {
    return this.#slots[Slot.Id]!;
  }

  /**
   * Blocks this runspace's thread until it owns the mutex or `timeout` ms
   * pass. True when acquired, false on timeout (nothing held). Reentrant for
   * the owning thread. Throws `AbandonedMutexError` (while owning the mutex)
   * when its last owner died holding it. Refused on the main thread.
   */
  waitOne(timeout?: number): boolean {
    this.#handle.assertLive();
    if (isMainThread) assertMayBlock('Mutex.waitOne', 'await mutex.acquire() or mutex.withLock()');
    const slots = this.#slots;
    if (this.#local.holder === 'thread') {
      slots[Slot.Recursion]!++;
      return true;
    }
    if (this.#machine !== undefined) return this.#waitOneMachine(this.#machine, timeout);
    if (Atomics.compareExchange(slots, Slot.State, 0, this.#taken) !== 0 && !this.#waitBlocking(deadlineOf(timeoutMs('timeout', timeout)))) return false;
    this.#becomeOwner('thread');
    return true;
  }

  #waitOneMachine(machine: FileLock, timeout: number | undefined): boolean {
    const deadline = deadlineOf(timeoutMs('timeout', timeout));
    if (Atomics.compareExchange(this.#slots, Slot.State, 0, OWNED) !== 0 && !this.#waitBlocking(deadline)) return false;
    this.#claim();
    return this.#holdMachine('thread', machine.lockBlocking(deadline));
  }

  #waitBlocking(deadline: number): boolean {
    const slots = this.#slots;
    if (this.#fair) return lockFairBlocking(slots, deadline);
    return lockOwnedBlocking(slots, deadline);
  }

  /**
   * Waits without blocking until this caller owns the mutex. Resolves true
   * when acquired, false when `timeout` passed (nothing held); rejects with
   * `OperationCancelledError` when `signal` aborts (nothing held, no waiter
   * left), or with `AbandonedMutexError` while owning it when its last owner
   * died holding it. Inside `withLock` on this mutex it re-enters.
   */
  acquire(options?: MutexAcquireOptions): Promise<boolean> {
    if (this.#handle.disposed) return Promise.reject(new ObjectDisposedError('Mutex'));
    const local = this.#local;
    if (local.flows > 0 && flowHolds(this.#id)) {
      this.#slots[Slot.Recursion]!++;
      return ACQUIRED;
    }
    // The free lock, asked without conditions: no await, no allocation. Not
    // while another async acquirer of this thread waits: it goes first.
    if (options === undefined && local.waiting === 0 && this.#machine === undefined && Atomics.compareExchange(this.#slots, Slot.State, 0, this.#taken) === 0) {
      try {
        this.#becomeOwner('thread');
      } catch (error) {
        return Promise.reject(error);
      }
      return ACQUIRED;
    }
    try {
      const [deadline, signal] = deadlineAndSignal(options);
      return this.#acquireFor('thread', deadline, this.#canceller.signalFor(signal));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** @internal For `WaitHandle`: takes the mutex if free (or this caller's) without waiting; 'abandoned' from a dead owner. */
  tryTakeForWait(): 'taken' | 'abandoned' | false {
    this.#handle.assertLive();
    const slots = this.#slots;
    const local = this.#local;
    if (local.holder === 'thread' || (local.flows > 0 && flowHolds(this.#id))) {
      slots[Slot.Recursion]!++;
      return 'taken';
    }
    const machine = this.#machine;
    if (Atomics.compareExchange(slots, Slot.State, 0, machine === undefined ? this.#taken : OWNED) !== 0) return false;
    try {
      if (machine !== undefined) return this.#tryHoldMachine(machine) ? 'taken' : false;
      this.#becomeOwner('thread');
      return 'taken';
    } catch (error) {
      if (error instanceof AbandonedMutexError) return 'abandoned';
      throw error;
    }
  }

  /** @internal Gives back what `tryTakeForWait` took (a `waitAll` that could not take every handle); an abandonment it reported stands for the next owner. */
  untakeForWait(abandoned: boolean): void {
    if (abandoned) Atomics.store(this.#slots, Slot.Abandoned, 1);
    this.releaseMutex();
  }

  /**
   * True while anyone holds the mutex (async-mutex's `isLocked`): a snapshot.
   * For a `Global\` mutex, holders in this process only: another process's
   * hold shows only by trying to take it.
   */
  isLocked(): boolean {
    this.#handle.assertLive();
    return Atomics.load(this.#slots, Slot.State) !== 0;
  }

  /**
   * Resolves true once the mutex is free, without taking it (async-mutex's
   * `waitForUnlock`); false on timeout; rejects with `OperationCancelledError`
   * on abort or `cancel()`. Someone may take it first: to hold it, `acquire`.
   * Wakes with the unlock in the default mode; a fair or `Global\` mutex is
   * looked at every few milliseconds instead, so that a watcher never takes
   * the handoff meant for the next owner.
   *
   * @example
   * ```ts
   * const { mutex } = Mutex.open('Local\\migration');
   * if (await mutex.waitForUnlock({ timeout: 60_000 })) console.log('the migration finished');
   * ```
   */
  async waitForUnlock(options?: MutexAcquireOptions): Promise<boolean> {
    this.#handle.assertLive();
    const [deadline, callerSignal] = deadlineAndSignal(options);
    const signal = this.#canceller.signalFor(callerSignal);
    if (this.#fair || this.#machine !== undefined) return pollUntil(() => !this.isLocked(), deadline, signal);
    if (signal.aborted) throw new OperationCancelledError(signal.reason, false);
    const outcome = await watchUnlockOwned(this.#slots, deadline, signal);
    if (outcome === 'aborted') throw new OperationCancelledError(signal.reason, false);
    return outcome;
  }

  /**
   * Stops every `acquire`, `withLock` and `waitForUnlock` still waiting
   * through this object (in this thread): each rejects with
   * `OperationCancelledError`, holding nothing (async-mutex's `cancel`). The
   * current owner keeps the mutex; later waits are unaffected.
   */
  cancel(): void {
    this.#canceller.cancel(new Error('Mutex.cancel() stopped this wait.'));
  }

  /**
   * Disposes this object (.NET's `Dispose`; also `using`): pending waits reject
   * (`OperationCancelledError`) and later calls throw `ObjectDisposedError`; a name is freed once every
   * object viewing it, in any thread, is disposed or collected. A held mutex
   * stays held (as in .NET): release it first.
   *
   * @example
   * ```ts
   * const { mutex } = Mutex.open('Local\\report');
   * await mutex.withLock(() => console.log('writing the report'));
   * mutex.dispose();
   * ```
   */
  dispose(): void {
    if (this.#handle.disposed) return;
    this.#canceller.cancel(new ObjectDisposedError('Mutex'));
    this.#handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Releases one acquisition. Throws `SynchronizationLockError` when the caller
   * does not own the mutex (another thread, or an unrelated async task of this
   * thread while a `withLock` holds it).
   */
  releaseMutex(): void {
    this.#handle.assertLive();
    const holder = this.#local.holder;
    if (holder !== 'thread' && (holder === undefined || !flowHolds(this.#id))) throw new SynchronizationLockError();
    const slots = this.#slots;
    if (slots[Slot.Recursion]! > 0) {
      slots[Slot.Recursion]!--;
      return;
    }
    this.#unlock();
  }

  /**
   * Runs `fn` while owning the mutex, and releases it afterwards whatever
   * happens (PowerShell's `Invoke-ActionWithMutex`). Nested `withLock` or
   * `acquire` on the same mutex inside `fn` re-enter; other async tasks wait.
   * Throws `TimeoutError` when `timeout` passes first.
   */
  async withLock<T>(fn: (info: LockInfo) => T | Promise<T>, options: WithLockOptions = {}): Promise<T> {
    this.#handle.assertLive();
    const { timeout, signal } = cancelOptions(options);
    const { onAbandoned } = readOptions(options, ['onAbandoned']);
    const slots = this.#slots;
    if (this.#local.flows > 0 && flowHolds(this.#id)) {
      slots[Slot.Recursion]!++;
      try {
        return await fn({ abandoned: false });
      } finally {
        slots[Slot.Recursion]!--;
      }
    }
    return runHolding(this.#id, async () => {
      const flow = currentFlowHolder()!;
      let abandoned = false;
      try {
        if (!(await this.#acquireFor(flow, deadlineOf(timeout), this.#canceller.signalFor(signal)))) throw new TimeoutError(timeout ?? 0, false);
      } catch (error) {
        // A timeout or abort holds nothing; an abandoned mutex is held, flagged.
        if (!(error instanceof AbandonedMutexError)) throw error;
        abandoned = true;
        if (onAbandoned !== 'continue') {
          this.#unlockFully();
          throw error;
        }
      }
      this.#local.flows++;
      try {
        return await fn({ abandoned });
      } finally {
        this.#local.flows--;
        this.#unlockFully();
      }
    });
  }

  /** @internal What crosses a thread boundary in place of this mutex. */
  toShared(): SharedHandle {
    this.#handle.retainForCrossing();
    return shareCell(Kind.Mutex, this.#cell, this.#name, this.#lockFile === undefined ? undefined : { lockFile: this.#lockFile });
  }

  #takeFree(holder: Holder): void {
    Atomics.store(this.#cell.slots, Slot.State, this.#taken);
    this.#becomeOwner(holder);
  }

  /**
   * Async acquirers of one thread wait in a line and take turns at the shared
   * lock: without it, a flow that releases and asks again takes the lock back
   * on a microtask before a waiter of its own thread, woken by a task, can
   * run, and starves it (measured: `runspaces bench contention --lock
   * mutex-async` gave one of two flows every acquisition). Threads still
   * barge against each other, as documented.
   */
  async #acquireFor(holder: Holder, deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
    if (signal?.aborted) throw new OperationCancelledError(signal.reason, false);
    const local = this.#local;
    const ahead = local.line;
    let leave!: () => void;
    const mine = new Promise<void>((resolve) => {
      leave = resolve;
    });
    local.line = mine;
    local.waiting++;
    try {
      if (ahead !== undefined) {
        const turn = await waitTurn(ahead, deadline, signal);
        if (turn === 'aborted') throw new OperationCancelledError(signal?.reason, false);
        if (turn === 'timed-out') return false;
      }
      return await this.#acquireShared(holder, deadline, signal);
    } finally {
      local.waiting--;
      if (local.line === mine) local.line = undefined;
      leave();
    }
  }

  async #acquireShared(holder: Holder, deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
    const slots = this.#cell.slots;
    if (Atomics.compareExchange(slots, Slot.State, 0, this.#taken) !== 0) {
      if (this.#fair) {
        const outcome = await lockFairAsync(slots, deadline, signal);
        if (outcome === 'aborted') throw new OperationCancelledError(signal?.reason, false);
        if (!outcome) return false;
      } else {
        const outcome = await lockOwnedAsync(slots, deadline, signal);
        if (outcome === 'aborted') throw new OperationCancelledError(signal?.reason, false);
        if (!outcome) return false;
      }
    }
    const machine = this.#machine;
    if (machine === undefined) {
      this.#becomeOwner(holder);
      return true;
    }
    this.#claim();
    let previous: number | false;
    try {
      previous = machine.try();
      if (previous === false) previous = await machine.lockAsync(deadline, signal);
    } catch (error) {
      this.#unlock();
      throw error;
    }
    return this.#holdMachine(holder, previous);
  }

  #becomeOwner(holder: Holder): void {
    const abandoned = this.#claim();
    this.#local.holder = holder;
    if (abandoned) throw new AbandonedMutexError(this);
  }

  /**
   * Records this thread as the owner of the in-process lock just won, and
   * reports (and clears) its abandoned flag. Who in the thread holds it is
   * set once every part of the lock is held.
   */
  #claim(): boolean {
    const slots = this.#slots;
    // The unfair lock word already names its owner. A fair one's OWNER is a
    // plain store: the STATE compare-exchange that won the lock fenced it, and
    // only this thread writes it while it owns the lock. RECURSION is already
    // 0 (extra acquisitions), so it needs no write: under contention every
    // store to this cache line costs.
    if (this.#fair) slots[Slot.Owner] = SELF;
    return slots[Slot.Abandoned] !== 0 && Atomics.exchange(slots, Slot.Abandoned, 0) === 1;
  }

  /** With the in-process lock just won: takes the file lock too if it is free, else gives both back (false). */
  #tryHoldMachine(machine: FileLock): boolean {
    this.#claim();
    let previous: number | false;
    try {
      previous = machine.try();
    } catch (error) {
      this.#unlock();
      throw error;
    }
    return this.#holdMachine('thread', previous);
  }

  /**
   * Ends a machine-wide acquisition, the in-process lock claimed: gives it
   * back when the file lock was not taken (false), else records the holder
   * and throws, owning both, when the lock file names an owner that died (a
   * runspace of this process or another process).
   */
  #holdMachine(holder: Holder, previousOwner: number | false): boolean {
    if (previousOwner === false) {
      this.#unlock();
      return false;
    }
    this.#local.holder = holder;
    // The lock file's owner record is the one truth about abandonment across processes: a runspace of this
    // process that died holding the mutex left this process's id there too. The in-process flag (cleared by
    // #claim) only says that a runspace of ours died; another process may have been told and cleaned up
    // since, and an abandonment is reported once, to the first owner after the death.
    if (previousOwner !== 0) {
      throw new AbandonedMutexError(this, previousOwner !== process.pid ? previousOwner : undefined);
    }
    return true;
  }

  #unlockFully(): void {
    this.#slots[Slot.Recursion] = 0;
    this.#unlock();
  }

  #unlock(): void {
    if (this.#machine?.held) {
      try {
        this.#machine.unlock();
      } finally {
        this.#unlockHere();
      }
      return;
    }
    this.#unlockHere();
  }

  #unlockHere(): void {
    const slots = this.#slots;
    this.#local.holder = undefined;
    if (this.#fair) {
      slots[Slot.Owner] = 0;
      unlockFair(slots);
    } else {
      unlockOwned(slots);
    }
  }
}

/** Its owner died holding it: flag it abandoned (first), then release it as the owner would have. */
const recoverMutex = (slots: Int32Array, deadOwner: number): boolean => (slots[Slot.Maximum] === 1 ? recoverFair(slots, deadOwner) : recoverOwned(slots, deadOwner));

registerKind(Kind.Mutex, Mutex, (cell, { name, lockFile }) => Mutex.fromCell(cell, name, lockFile), recoverMutex);
