/**
 * The fair mode of `Mutex`: ownership is handed to the longest waiter.
 *
 * ## The lock word (STATE)
 * ```
 *   0  free, nobody asleep             a newcomer may take it (compare-exchange 0 → 1)
 *   1  held, nobody asleep             a newcomer marks 2 and sleeps
 *   2  held, someone may be asleep     a newcomer sleeps
 *   3  handed off                      only the thread the last notify woke may take it (3 → 2)
 * ```
 *
 * Unlock with sleepers does not free the lock: it writes 3 and wakes one
 * sleeper. `Atomics.notify` wakes waiters in the order they began waiting,
 * so the lock goes to the longest waiter and nobody can barge in between.
 * If the notify woke nobody (the sleepers timed out meanwhile), unlock takes
 * the handoff back (3 → 0) and wakes everyone, in case someone fell asleep on
 * 3 in that instant. An async waiter that was aborted but is handed the lock
 * anyway takes it and passes it on at once.
 *
 * ## Cost
 * No spinning and no barging means every contended acquisition sleeps and is
 * woken: throughput under contention falls to the speed of thread wake-ups
 * (measured in docs/benchmarks.md). In exchange no waiter is overtaken.
 *
 * @module
 */

import { Slot } from './arena.js';
import { blockWhile, waitWhile } from './waiting.js';

const HANDED_OFF = 3;

/** Releases a fair lock: frees it when nobody waits, else hands it to the longest waiter. */
export function unlockFair(slots: Int32Array): void {
  if (Atomics.compareExchange(slots, Slot.State, 1, 0) === 1) return;
  Atomics.store(slots, Slot.State, HANDED_OFF);
  if (Atomics.notify(slots, Slot.State, 1) === 0) {
    Atomics.compareExchange(slots, Slot.State, HANDED_OFF, 0);
    Atomics.notify(slots, Slot.State);
  }
}

/** Its owner died holding it: flag it abandoned (first), then hand it on as the owner would have. */
export function recoverFair(slots: Int32Array, deadOwner: number): boolean {
  if (Atomics.compareExchange(slots, Slot.Owner, deadOwner, 0) !== deadOwner) return false;
  Atomics.store(slots, Slot.Recursion, 0);
  Atomics.store(slots, Slot.Abandoned, 1);
  unlockFair(slots);
  return true;
}

/** What a waiter does after each sleep: true = owns the lock. */
function afterWake(slots: Int32Array, outcome: string): boolean {
  return outcome === 'notified' && Atomics.compareExchange(slots, Slot.State, HANDED_OFF, 2) === HANDED_OFF;
}

/** One step before sleeping: true = took a free lock; otherwise the value to sleep on. */
function tryOrMark(slots: Int32Array): true | number {
  const state = Atomics.load(slots, Slot.State);
  if (state === 0) return Atomics.compareExchange(slots, Slot.State, 0, 1) === 0 ? true : -1;
  if (state === 1) return Atomics.compareExchange(slots, Slot.State, 1, 2) === 1 ? 2 : -1;
  return state;
}

export function lockFairBlocking(slots: Int32Array, deadline: number): boolean {
  for (;;) {
    const step = tryOrMark(slots);
    if (step === true) return true;
    if (step === -1) continue;
    const outcome = blockWhile(slots, Slot.State, step, deadline);
    if (afterWake(slots, outcome)) return true;
    if (outcome === 'timed-out') return false;
  }
}

/** An aborted waiter handed the lock late: take it and pass it straight on. */
const passOn = (slots: Int32Array): void => {
  if (Atomics.compareExchange(slots, Slot.State, HANDED_OFF, 2) === HANDED_OFF) unlockFair(slots);
};

/** Resolves true when owned, false on timeout, 'aborted' on abort (holding nothing). */
export async function lockFairAsync(slots: Int32Array, deadline: number, signal: AbortSignal | undefined): Promise<boolean | 'aborted'> {
  for (;;) {
    const step = tryOrMark(slots);
    if (step === true) return true;
    if (step === -1) continue;
    const outcome = await waitWhile(slots, Slot.State, step, deadline, signal, passOn);
    if (outcome === 'aborted') return 'aborted';
    if (afterWake(slots, outcome)) return true;
    if (outcome === 'timed-out') return false;
  }
}
