/**
 * The default (unfair) mode of `Mutex`: a futex mutex whose lock word names
 * its owner.
 *
 * ## The lock word (cell slot STATE)
 *
 * The classic futex mutex, with the owner in the word itself:
 *
 * ```
 *   0              free
 *   owner << 1     held, nobody waits       unlock: swap in 0, no notify (a notify costs ~40 ns even unheard)
 *   owner << 1 | 1 held, someone may wait   unlock: swap in 0, notify one
 * ```
 *
 * `owner` is the owning thread's id + 1 (`SELF`). Taking a free lock is one
 * compare-exchange, releasing it one swap, as in the bare three-state mutex:
 * a separate owner slot cost a second write to shared memory per
 * acquisition, which under contention made the mutex 0.42× as fast as the
 * bare one (0.96–1.02× with the owner in the word). It also leaves no
 * instant in which the lock is held with no owner recorded, so a runspace
 * that dies right after taking it still abandons it.
 *
 * Lock: compare-exchange 0 → owner; on failure spin briefly (a holder usually
 * leaves within a microsecond, and a sleeping waiter costs ~15 µs to wake),
 * then set the low bit and sleep while the word keeps that value; take a free
 * word with the bit set, since others may still sleep. A waiter that times
 * out leaves the bit set: the next unlock sends one notify nobody needed,
 * which is harmless.
 *
 * Watchers (`waitForUnlock`) sleep on the word like waiters, but take
 * nothing when it frees. So that one of them never absorbs the single
 * wake-up a sleeping acquirer needed, they count themselves in WAITERS, and
 * an unlock wakes everyone while any watches.
 *
 * @module
 */

import { Slot } from './arena.js';
import { SELF } from './ownership.js';
import { blockWhile, waitWhile } from './waiting.js';

/** The lock word of a lock this thread holds and nobody waits on. */
export const OWNED = SELF << 1;
/** The low bit: others may sleep on the lock. */
const WAITED = 1;
/** Polls of a held lock before sleeping on it. */
const SPINS = 100;

/**
 * One step of a waiter: takes the free lock (marked waited: others may still
 * sleep on it), or marks the held lock waited. Returns 0 when it took the
 * lock, the word to sleep on, or -1 when the word changed under it (retry).
 */
function markWaited(slots: Int32Array): number {
  const word = Atomics.load(slots, Slot.State);
  if (word === 0) return Atomics.compareExchange(slots, Slot.State, 0, OWNED | WAITED) === 0 ? 0 : -1;
  if ((word & WAITED) !== 0) return word;
  return Atomics.compareExchange(slots, Slot.State, word, word | WAITED) === word ? word | WAITED : -1;
}

/** After a failed first compare-exchange: true once owned, false when `deadline` passed. */
export function lockOwnedBlocking(slots: Int32Array, deadline: number): boolean {
  for (let i = 0; i < SPINS; i++) {
    if (Atomics.load(slots, Slot.State) === 0 && Atomics.compareExchange(slots, Slot.State, 0, OWNED) === 0) return true;
  }
  for (;;) {
    const waited = markWaited(slots);
    if (waited === 0) return true;
    if (waited > 0 && blockWhile(slots, Slot.State, waited, deadline) === 'timed-out' && performance.now() >= deadline) return false;
  }
}

/** The same without blocking: true once owned, false on timeout, 'aborted' on abort (holding nothing). */
export async function lockOwnedAsync(slots: Int32Array, deadline: number, signal: AbortSignal | undefined): Promise<boolean | 'aborted'> {
  for (let waited = markWaited(slots); waited !== 0; waited = markWaited(slots)) {
    if (waited < 0) continue;
    const outcome = await waitWhile(slots, Slot.State, waited, deadline, signal);
    if (outcome === 'aborted' || outcome === 'timed-out') return outcome === 'aborted' ? 'aborted' : false;
  }
  return true;
}

export function unlockOwned(slots: Int32Array): void {
  if ((Atomics.exchange(slots, Slot.State, 0) & WAITED) !== 0) Atomics.notify(slots, Slot.State, Atomics.load(slots, Slot.Waiters) > 0 ? Infinity : 1);
}

/** Waits, holding nothing, until the lock is free: true, or false on timeout, 'aborted' on abort. */
export async function watchUnlockOwned(slots: Int32Array, deadline: number, signal: AbortSignal | undefined): Promise<boolean | 'aborted'> {
  // Counted before the word is marked: an unlock that sees the mark then sees the watcher.
  Atomics.add(slots, Slot.Waiters, 1);
  try {
    for (;;) {
      const word = Atomics.load(slots, Slot.State);
      if (word === 0) return true;
      if ((word & WAITED) === 0 && Atomics.compareExchange(slots, Slot.State, word, word | WAITED) !== word) continue;
      const outcome = await waitWhile(slots, Slot.State, word | WAITED, deadline, signal);
      if (outcome === 'aborted') return 'aborted';
      if (outcome === 'timed-out') return Atomics.load(slots, Slot.State) === 0;
    }
  } finally {
    Atomics.sub(slots, Slot.Waiters, 1);
  }
}

/** Its owner died holding it: flag it abandoned (first), then release it as the owner would have. */
export function recoverOwned(slots: Int32Array, deadOwner: number): boolean {
  // The dead owner's word can still change: a waiter may set its low bit.
  for (;;) {
    const word = Atomics.load(slots, Slot.State);
    if (word >>> 1 !== deadOwner) return false;
    Atomics.store(slots, Slot.Recursion, 0);
    Atomics.store(slots, Slot.Abandoned, 1);
    if (Atomics.compareExchange(slots, Slot.State, word, 0) === word) break;
  }
  Atomics.notify(slots, Slot.State);
  return true;
}
