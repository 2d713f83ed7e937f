/**
 * Waiting on a shared slot, blocking (runspaces only) or asynchronously (any
 * thread), with the three traps of `Atomics.waitAsync` handled once here:
 *
 * - It does not keep Node's event loop alive: a process could exit while
 *   someone still waits. A referenced handle is held while any async waiter
 *   of this thread exists, and dropped with the last one.
 * - A wait with no timeout that is never notified leaks inside V8: waits are
 *   always given a timeout (long ones are sliced).
 * - It cannot be cancelled. An aborted waiter leaves its V8 wait registered;
 *   if a notify later lands on it, it would swallow a wake-up meant for a live
 *   waiter. So an abandoned wait that is woken passes the wake-up on.
 *
 * @module
 */

import { isMainThread } from 'node:worker_threads';
import { BlockingWaitError, OperationCancelledError } from '../errors.js';
import { deadlineOf, remaining, startTimer, type Timer } from '../util/deadline.js';
import { cancelOptions } from '../util/options.js';

export { deadlineOf, remaining } from '../util/deadline.js';

/** A wait's options, read and checked once: its deadline and its signal. */
export function deadlineAndSignal(options: unknown): [deadline: number, signal: AbortSignal | undefined] {
  const { timeout, signal } = cancelOptions(options);
  return [deadlineOf(timeout), signal];
}

/** Longest single `waitAsync`: waits without a deadline are sliced into these. */
const SLICE_MS = 30_000;

/**
 * `notified`: an `Atomics.notify` woke this waiter; `woken`: it returned for
 * another reason (the value had changed, or a slice of a long wait ended);
 * callers re-check either way, and only a handoff lock cares which.
 */
export type WaitOutcome = 'notified' | 'woken' | 'timed-out' | 'aborted';

export function assertMayBlock(method: string, alternative: string): void {
  if (isMainThread) throw new BlockingWaitError(method, alternative);
}

/** Blocks this thread while `slots[index] === expected`, until woken or the deadline. */
export function blockWhile(slots: Int32Array, index: number, expected: number, deadline: number): 'notified' | 'woken' | 'timed-out' {
  const result = Atomics.wait(slots, index, expected, remaining(deadline));
  return result === 'timed-out' ? 'timed-out' : result === 'ok' ? 'notified' : 'woken';
}

let asyncWaiters = 0;
let keepAlive: NodeJS.Timeout | undefined;

function holdEventLoop(): void {
  if (asyncWaiters++ === 0) keepAlive = setInterval(() => undefined, 1 << 30);
}

function releaseEventLoop(): void {
  if (--asyncWaiters === 0 && keepAlive !== undefined) {
    clearInterval(keepAlive);
    keepAlive = undefined;
  }
}

/** By default a wake-up that reaches an abandoned wait is handed to the next waiter. */
const forwardWake = (slots: Int32Array, index: number): void => {
  Atomics.notify(slots, index, 1);
};

/**
 * Waits without blocking while `slots[index] === expected`, until woken, the
 * deadline, or `signal`. `onLateWake` runs if the wait is notified after it
 * was abandoned to `signal` (by default: pass the wake-up on).
 */
export async function waitWhile(
  slots: Int32Array,
  index: number,
  expected: number,
  deadline: number,
  signal: AbortSignal | undefined,
  onLateWake: (slots: Int32Array, index: number) => void = forwardWake,
): Promise<WaitOutcome> {
  if (signal?.aborted) return 'aborted';
  const left = remaining(deadline);
  if (left <= 0) return 'timed-out';
  const waited = Atomics.waitAsync(slots, index, expected, Math.min(left, SLICE_MS));
  if (!waited.async) return 'woken';
  holdEventLoop();
  try {
    if (signal === undefined) {
      const value = await waited.value;
      if (value === 'ok') return 'notified';
      return remaining(deadline) <= 0 ? 'timed-out' : 'woken';
    }
    let onAbort!: () => void;
    const aborted = new Promise<'aborted'>((resolve) => {
      onAbort = () => resolve('aborted');
      signal.addEventListener('abort', onAbort, { once: true });
    });
    const outcome = await Promise.race([waited.value, aborted]);
    signal.removeEventListener('abort', onAbort);
    if (outcome === 'aborted') {
      // Our wait stays registered in V8 until its timeout; if it is the one a
      // releaser wakes, hand that wake-up to the next waiter.
      void waited.value.then((value) => {
        if (value === 'ok') onLateWake(slots, index);
      });
      return 'aborted';
    }
    if (outcome === 'ok') return 'notified';
    return remaining(deadline) <= 0 ? 'timed-out' : 'woken';
  } finally {
    releaseEventLoop();
  }
}

/**
 * The wait shared by every primitive whose waiters only need "some slot
 * changed, look again" (semaphores, events): announce yourself in
 * `waitersIndex`, re-check `ready()`, and sleep while `slots[index]` still
 * holds the value seen before that check. A releaser publishes its change
 * first and reads the waiter count after, so either the waiter sees the
 * change or the releaser sees the waiter: no wake-up is lost.
 *
 * `ready()` may consume what it finds (take a permit, reset an event).
 */
export function blockUntil(slots: Int32Array, index: number, waitersIndex: number, ready: () => boolean, deadline: number): boolean {
  if (ready()) return true;
  Atomics.add(slots, waitersIndex, 1);
  try {
    for (;;) {
      const seen = Atomics.load(slots, index);
      if (ready()) return true;
      if (blockWhile(slots, index, seen, deadline) === 'timed-out') return ready();
    }
  } finally {
    Atomics.sub(slots, waitersIndex, 1);
  }
}

/** The non-blocking form of {@link blockUntil}; rejects with `OperationCancelledError` on abort. */
export async function waitUntil(
  slots: Int32Array,
  index: number,
  waitersIndex: number,
  ready: () => boolean,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  if (signal?.aborted) throw new OperationCancelledError(signal.reason, false);
  if (ready()) return true;
  Atomics.add(slots, waitersIndex, 1);
  try {
    for (;;) {
      const seen = Atomics.load(slots, index);
      if (ready()) return true;
      const outcome = await waitWhile(slots, index, seen, deadline, signal);
      if (outcome === 'aborted') throw new OperationCancelledError(signal?.reason, false);
      if (outcome === 'timed-out') return ready();
    }
  } finally {
    Atomics.sub(slots, waitersIndex, 1);
  }
}

/**
 * Looks at `ready()` every few milliseconds (1, doubling to 16) until it
 * holds, the deadline passes (then one last look) or `signal` aborts
 * (`OperationCancelledError`): for waits that have no word of their own to
 * sleep on without taking a wake-up meant for someone else.
 */
export async function pollUntil(ready: () => boolean, deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
  for (let pause = 1; ; pause = Math.min(pause * 2, 16)) {
    if (signal?.aborted) throw new OperationCancelledError(signal.reason, false);
    if (ready()) return true;
    if (!(await pauseAsync(pause, deadline, signal))) return ready();
  }
}

/** Waits `ms` (at most until the deadline), or until `signal` aborts; false when the deadline had already passed. */
export async function pauseAsync(ms: number, deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
  const left = remaining(deadline);
  if (left <= 0) return false;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, Math.min(ms, left));
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
  return true;
}

/**
 * Waits for `ahead` (the previous waiter of this thread's line) to settle,
 * until the deadline or an abort; keeps the event loop alive meanwhile, as
 * every async wait of this library does.
 */
export async function waitTurn(ahead: Promise<void>, deadline: number, signal: AbortSignal | undefined): Promise<WaitOutcome | 'turn'> {
  if (signal?.aborted) return 'aborted';
  const left = remaining(deadline);
  if (left <= 0) return 'timed-out';
  let timer: Timer | undefined;
  let onAbort: (() => void) | undefined;
  const racers: Promise<WaitOutcome | 'turn'>[] = [ahead.then(() => 'turn' as const)];
  if (left !== Infinity) racers.push(new Promise((resolve) => (timer = startTimer(left, () => resolve('timed-out')))));
  if (signal !== undefined) {
    racers.push(new Promise((resolve) => {
      onAbort = () => resolve('aborted');
      signal.addEventListener('abort', onAbort, { once: true });
    }));
  }
  holdEventLoop();
  try {
    return await Promise.race(racers);
  } finally {
    releaseEventLoop();
    timer?.cancel();
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  }
}
