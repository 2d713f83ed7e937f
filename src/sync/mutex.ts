/**
 * Mutex: .NET's `System.Threading.Mutex` over shared memory.
 *
 * ## The lock word (cell slot STATE)
 *
 * The classic three-state futex mutex:
 *
 * ```
 *   0  free
 *   1  held, nobody waits           unlock: store 0, no notify (a notify costs ~40 ns even unheard)
 *   2  held, someone may wait       unlock: store 0, notify one
 * ```
 *
 * Lock: compare-exchange 0 → 1; on failure spin briefly (a holder usually
 * leaves within a microsecond, and a sleeping waiter costs ~15 µs to wake),
 * then swap in 2 and sleep while the word is 2, swapping 2 in again on each
 * wake until the swap returns 0. A waiter that times out leaves the word at
 * 2: the next unlock sends one notify nobody needed, which is harmless.
 *
 * ## Fairness
 * Unfair ("barging"): a thread arriving as the lock is released may take it
 * before a woken waiter. Under contention this is many times faster than
 * handing off in order (a strict FIFO lock in JS measured 30× slower), at the
 * price of no bound on how long one waiter can lose the race.
 *
 * ## Owner and recursion
 * OWNER holds the owning thread's id + 1, RECURSION how many times it
 * acquired beyond the first (so taking a free lock writes only OWNER). Only
 * the owner writes them (and the supervisor, when the owner is
 * dead). Re-acquiring by the owner only counts; it must release as often.
 * See `ownership.ts` for how async flows of one thread are told apart.
 *
 * ## Abandonment
 * When a runspace dies holding the mutex, the pool frees it and sets the
 * ABANDONED slot; the next acquirer owns it and gets `AbandonedMutexError`.
 *
 * @module
 */

import { AbandonedMutexError, OperationCancelledError, SynchronizationLockError, TimeoutError } from '../errors.js';
import { Kind, newCell, Slot, type Cell } from './arena.js';
import { lockFairAsync, lockFairBlocking, unlockFair } from './handoff-lock.js';
import { openExistingNamed, openNamed, tryOpenExistingNamed } from './named.js';
import { currentFlowHolder, flowHolds, localCell, runHolding, SELF, type Holder, type LocalCell } from './ownership.js';
import { adoptCell, registerKind, shareCell, takeAdopted, type SharedHandle } from './shared-cells.js';
import { isMainThread } from 'node:worker_threads';
import { assertMayBlock, blockWhile, deadlineOf, validTimeout, waitWhile } from './waiting.js';

const SPINS = 100;
const ACQUIRED: Promise<boolean> = Promise.resolve(true);


/** Options of `Mutex.acquire`. */
export interface MutexAcquireOptions {
  /** Milliseconds to wait; then `acquire` resolves false. Default: no limit. */
  readonly timeout?: number;
  /** Stops waiting: `acquire` rejects with `OperationCancelledError`, holding nothing. */
  readonly signal?: AbortSignal;
}

/** Options of a new mutex. */
export interface MutexOptions {
  /**
   * Hand ownership to the longest waiter instead of letting newcomers barge
   * in. No waiter is ever overtaken, at a large cost in contended throughput
   * (see docs/benchmarks.md). Default false.
   */
  readonly fair?: boolean;
}

export interface WithLockOptions extends MutexAcquireOptions {
  /**
   * When the previous owner died holding the mutex: `'throw'` (default)
   * releases it and throws `AbandonedMutexError`; `'continue'` runs the
   * callback anyway, with `abandoned: true`.
   */
  readonly onAbandoned?: 'throw' | 'continue';
}

/** What `withLock` tells its callback. */
export interface LockInfo {
  /** True when the previous owner died holding the mutex: check what it protects. */
  readonly abandoned: boolean;
}

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
 *
 * @example
 * ```ts
 * const { mutex } = Mutex.open('Local\\status-file');
 * await mutex.withLock(async () => {
 *   const status = JSON.parse(await readFile(path, 'utf8'));
 *   await writeFile(path, JSON.stringify({ ...status, done: true }));
 * });
 * ```
 */
export class Mutex {
  readonly #cell: Cell;
  readonly #slots: Int32Array;
  readonly #local: LocalCell;
  readonly #name: string | null;
  readonly #fair: boolean;

  /** An unnamed mutex; pass it to runspaces as a `using` value or argument. */
  constructor(initiallyOwned = false, options: MutexOptions = {}) {
    const adopted = takeAdopted();
    if (adopted !== undefined) {
      ({ cell: this.#cell, name: this.#name } = adopted);
    } else {
      this.#cell = newCell(Kind.Mutex);
      this.#cell.slots[Slot.Maximum] = options.fair ? 1 : 0;
      this.#name = null;
    }
    this.#slots = this.#cell.slots;
    this.#fair = this.#slots[Slot.Maximum] === 1;
    this.#local = localCell(this.#slots[Slot.Id]!);
    if (initiallyOwned) this.#takeFree('thread');
  }

  /** @internal Rebuilds a mutex around a cell that came from another thread or the arena. */
  static fromCell(cell: Cell, name: string | null): Mutex {
    return adoptCell(cell, name, () => new Mutex());
  }

  /**
   * Opens the mutex of this name in this process, creating it if needed.
   * `initiallyOwned` and `fair` take effect only when this call created it
   * (`createdNew`), as in .NET. `Local\` and bare names are the same.
   */
  static open(name: string, options: { initiallyOwned?: boolean } & MutexOptions = {}): { mutex: Mutex; createdNew: boolean } {
    const found = openNamed(Kind.Mutex, name, (slots) => {
      slots[Slot.Maximum] = options.fair ? 1 : 0;
      if (options.initiallyOwned) {
        slots[Slot.State] = 1;
        slots[Slot.Owner] = SELF;
      }
    });
    const mutex = Mutex.fromCell(found.cell, found.name);
    if (found.createdNew && options.initiallyOwned) mutex.#local.holder = 'thread';
    return { mutex, createdNew: found.createdNew };
  }

  /** Opens an existing named mutex; throws `WaitHandleNotFoundError` when there is none. */
  static openExisting(name: string): Mutex {
    const found = openExistingNamed(Kind.Mutex, name);
    return Mutex.fromCell(found.cell, found.name);
  }

  /** Opens an existing named mutex, or returns undefined. */
  static tryOpenExisting(name: string): Mutex | undefined {
    const found = tryOpenExistingNamed(Kind.Mutex, name);
    return found === undefined ? undefined : Mutex.fromCell(found.cell, found.name);
  }

  /** The name, without a `Local\` prefix; null for an unnamed mutex. */
  get name(): string | null {
    return this.#name;
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
    if (isMainThread) assertMayBlock('Mutex.waitOne', 'await mutex.acquire() or mutex.withLock()');
    const slots = this.#slots;
    if (this.#local.holder === 'thread') {
      slots[Slot.Recursion]!++;
      return true;
    }
    if (Atomics.compareExchange(slots, Slot.State, 0, 1) !== 0 && !this.#waitBlocking(timeout)) return false;
    this.#becomeOwner('thread');
    return true;
  }

  #waitBlocking(timeout: number | undefined): boolean {
    const deadline = deadlineOf(validTimeout(timeout));
    const slots = this.#slots;
    if (this.#fair) return lockFairBlocking(slots, deadline);
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.load(slots, Slot.State) === 0 && Atomics.compareExchange(slots, Slot.State, 0, 1) === 0) return true;
    }
    let state = Atomics.exchange(slots, Slot.State, 2);
    while (state !== 0) {
      if (blockWhile(slots, Slot.State, 2, deadline) === 'timed-out' && performance.now() >= deadline) return false;
      state = Atomics.exchange(slots, Slot.State, 2);
    }
    return true;
  }

  /**
   * Waits without blocking until this caller owns the mutex. Resolves true
   * when acquired, false when `timeout` passed (nothing held); rejects with
   * `OperationCancelledError` when `signal` aborts (nothing held, no waiter
   * left), or with `AbandonedMutexError` while owning it when its last owner
   * died holding it. Inside `withLock` on this mutex it re-enters.
   */
  acquire(options?: MutexAcquireOptions): Promise<boolean> {
    const local = this.#local;
    if (local.flows > 0 && flowHolds(this.#id)) {
      this.#slots[Slot.Recursion]!++;
      return ACQUIRED;
    }
    // The free lock, asked without conditions: no await, no allocation.
    if (options === undefined && Atomics.compareExchange(this.#slots, Slot.State, 0, 1) === 0) {
      try {
        this.#becomeOwner('thread');
      } catch (error) {
        return Promise.reject(error);
      }
      return ACQUIRED;
    }
    try {
      const timeout = validTimeout(options?.timeout);
      return this.#acquireFor('thread', deadlineOf(timeout), options?.signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Releases one acquisition. Throws `SynchronizationLockError` when the caller
   * does not own the mutex (another thread, or an unrelated async task of this
   * thread while a `withLock` holds it).
   */
  releaseMutex(): void {
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
    const timeout = validTimeout(options.timeout);
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
        if (!(await this.#acquireFor(flow, deadlineOf(timeout), options.signal))) throw new TimeoutError(timeout ?? 0, false);
      } catch (error) {
        // A timeout or abort holds nothing; an abandoned mutex is held, flagged.
        if (!(error instanceof AbandonedMutexError)) throw error;
        abandoned = true;
        if (options.onAbandoned !== 'continue') {
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
    return shareCell(Kind.Mutex, this.#cell, this.#name);
  }

  #takeFree(holder: Holder): void {
    Atomics.store(this.#cell.slots, Slot.State, 1);
    this.#becomeOwner(holder);
  }

  async #acquireFor(holder: Holder, deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
    if (signal?.aborted) throw new OperationCancelledError(signal.reason, false);
    const slots = this.#cell.slots;
    if (Atomics.compareExchange(slots, Slot.State, 0, 1) !== 0) {
      if (this.#fair) {
        const outcome = await lockFairAsync(slots, deadline, signal);
        if (outcome === 'aborted') throw new OperationCancelledError(signal?.reason, false);
        if (!outcome) return false;
      } else {
        let state = Atomics.exchange(slots, Slot.State, 2);
        while (state !== 0) {
          const outcome = await waitWhile(slots, Slot.State, 2, deadline, signal);
          if (outcome === 'aborted') throw new OperationCancelledError(signal?.reason, false);
          if (outcome === 'timed-out') return false;
          state = Atomics.exchange(slots, Slot.State, 2);
        }
      }
    }
    this.#becomeOwner(holder);
    return true;
  }

  #becomeOwner(holder: Holder): void {
    const slots = this.#slots;
    // A plain store: the STATE compare-exchange that won the lock already
    // fenced it, and only this thread writes it while it owns the lock.
    // RECURSION is already 0 (extra acquisitions), so it needs no write: under
    // contention every store to this cache line costs.
    slots[Slot.Owner] = SELF;
    this.#local.holder = holder;
    if (slots[Slot.Abandoned] !== 0 && Atomics.exchange(slots, Slot.Abandoned, 0) === 1) {
      throw new AbandonedMutexError(this);
    }
  }

  #unlockFully(): void {
    this.#slots[Slot.Recursion] = 0;
    this.#unlock();
  }

  #unlock(): void {
    const slots = this.#slots;
    this.#local.holder = undefined;
    slots[Slot.Owner] = 0;
    if (this.#fair) unlockFair(slots);
    else if (Atomics.exchange(slots, Slot.State, 0) === 2) Atomics.notify(slots, Slot.State, 1);
  }
}

/** Its owner died holding it: flag it abandoned (first), then release it as the owner would have. */
function recoverMutex(slots: Int32Array, deadOwner: number): boolean {
  if (Atomics.compareExchange(slots, Slot.Owner, deadOwner, 0) !== deadOwner) return false;
  Atomics.store(slots, Slot.Recursion, 0);
  Atomics.store(slots, Slot.Abandoned, 1);
  if (slots[Slot.Maximum] === 1) {
    unlockFair(slots);
  } else {
    Atomics.store(slots, Slot.State, 0);
    Atomics.notify(slots, Slot.State);
  }
  return true;
}

registerKind(Kind.Mutex, Mutex, (cell, name) => Mutex.fromCell(cell, name), recoverMutex);
