/**
 * `WaitHandle.WaitAny` / `WaitAll` of .NET across this library's
 * primitives: wait until one of several (or all of them) lets this caller
 * through, taking what a single wait would take (a mutex's ownership, a
 * semaphore's permit, an auto-reset event's signal).
 *
 * ## Why it looks rather than sleeps
 * A waiter here cannot sleep on several words of shared memory at once, and
 * sleeping on any one of them would make it one of that primitive's
 * waiters: an unlock or `set()` that wakes exactly one waiter could wake it
 * instead of the waiter that needed it, which would then sleep on with the
 * lock free. So a multiple wait looks at each handle in turn, then pauses
 * (1 ms, doubling to 16) before looking again: the latency of a wait that
 * has to wait is at most that pause, and it never disturbs the primitives'
 * own waiters.
 *
 * ## waitAll
 * Takes every handle in order; when one cannot be taken, gives back those it
 * took (in reverse order) and looks again later. Nothing is held while it
 * waits, so two `waitAll` on the same handles in different orders cannot
 * deadlock each other. As in .NET, it returns only when it held all of them
 * at once.
 *
 * @module
 */

import { isMainThread } from 'node:worker_threads';
import { AbandonedMutexError, InvalidArgumentError, OperationCancelledError, shown } from '../errors.js';
import { AutoResetEvent } from './auto-reset-event.js';
import { CountdownEvent } from './countdown-event.js';
import { ManualResetEvent } from './manual-reset-event.js';
import { Mutex } from './mutex.js';
import { Semaphore } from './semaphore.js';
import type { WaitOptions } from './event-handle.js';
import { assertMayBlock, deadlineAndSignal, deadlineOf, pauseAsync, remaining } from './waiting.js';
import { timeoutMs } from '../util/deadline.js';

/** What `WaitHandle.waitAny/waitAll` can wait on: .NET's wait handles, and `CountdownEvent` (whose `WaitHandle` .NET exposes). */
export type Waitable = Mutex | Semaphore | ManualResetEvent | AutoResetEvent | CountdownEvent;

type Taken = 'taken' | 'abandoned' | false;

const KINDS = [Mutex, Semaphore, ManualResetEvent, AutoResetEvent, CountdownEvent] as const;
const LONGEST_PAUSE_MS = 16;
/** A word nobody notifies: a blocking pause sleeps on it for its length. */
const pauseWord = new Int32Array(new SharedArrayBuffer(4));

/**
 * Waits on several synchronization objects at once, as .NET's
 * `WaitHandle.WaitAny` and `WaitAll`. Blocking forms are for runspaces
 * (refused on the main thread); the async forms work anywhere.
 *
 * A mutex taken from an owner that died is reported as a single wait
 * reports it: `AbandonedMutexError` (with `mutexIndex`), thrown while this
 * caller holds what it took. Waits that must wait look every few
 * milliseconds (see the module notes), so they answer within about 16 ms.
 *
 * @example
 * ```ts
 * const shutdown = new ManualResetEvent(false);
 * const work = new Semaphore(0, 100);
 * const worker = pool.invoke(async (ctx) => {
 *   const { WaitHandle } = await import('runspaces');
 *   let done = 0;
 *   for (;;) {
 *     const which = WaitHandle.waitAny([ctx.using.shutdown, ctx.using.work], 5_000);
 *     if (which !== 1) return done;   // 0: shut down; WaitHandle.WaitTimeout: idle too long
 *     done++;                         // one unit of work, its permit taken
 *   }
 * }, { using: { shutdown, work } });
 * work.release(3);
 * shutdown.set();
 * console.log(await worker);
 * ```
 */
export class WaitHandle {
  private constructor() {}

  /** What `waitAny` returns when its timeout passed first (.NET's `WaitHandle.WaitTimeout`). */
  static readonly WaitTimeout = 258;
  /** The most handles one wait takes (.NET's limit). */
  static readonly MaxWaitHandles = 64;

  /**
   * Blocks this runspace until one of `handles` lets it through, and returns
   * its index (the lowest, when several can); `WaitHandle.WaitTimeout` when
   * `timeout` ms pass first.
   */
  static waitAny(handles: readonly Waitable[], timeout?: number): number {
    if (isMainThread) assertMayBlock('WaitHandle.waitAny', 'await WaitHandle.waitAnyAsync()');
    const list = checkHandles(handles, false);
    const deadline = deadlineOf(timeoutMs('timeout', timeout));
    for (let pause = 1; ; pause = Math.min(pause * 2, LONGEST_PAUSE_MS)) {
      const index = takeAny(list);
      if (index !== undefined) return index;
      if (!pauseBlocking(pause, deadline)) return takeAny(list) ?? WaitHandle.WaitTimeout;
    }
  }

  /** `waitAny` without blocking: resolves with the index, or `WaitTimeout`; rejects with `OperationCancelledError` on abort. */
  static async waitAnyAsync(handles: readonly Waitable[], options?: WaitOptions): Promise<number> {
    const list = checkHandles(handles, false);
    const [deadline, signal] = deadlineAndSignal(options);
    for (let pause = 1; ; pause = Math.min(pause * 2, LONGEST_PAUSE_MS)) {
      if (signal?.aborted) throw new OperationCancelledError(signal.reason, false);
      const index = takeAny(list);
      if (index !== undefined) return index;
      if (!(await pauseAsync(pause, deadline, signal))) return takeAny(list) ?? WaitHandle.WaitTimeout;
    }
  }

  /**
   * Blocks this runspace until it holds every one of `handles` at once
   * (true), or `timeout` ms pass (false, nothing held). A handle may appear
   * once only.
   */
  static waitAll(handles: readonly Waitable[], timeout?: number): boolean {
    if (isMainThread) assertMayBlock('WaitHandle.waitAll', 'await WaitHandle.waitAllAsync()');
    const list = checkHandles(handles, true);
    const deadline = deadlineOf(timeoutMs('timeout', timeout));
    for (let pause = 1; ; pause = Math.min(pause * 2, LONGEST_PAUSE_MS)) {
      if (takeAll(list)) return true;
      if (!pauseBlocking(pause, deadline)) return takeAll(list);
    }
  }

  /** `waitAll` without blocking: true once all are held, false on timeout; rejects with `OperationCancelledError` on abort (nothing held). */
  static async waitAllAsync(handles: readonly Waitable[], options?: WaitOptions): Promise<boolean> {
    const list = checkHandles(handles, true);
    const [deadline, signal] = deadlineAndSignal(options);
    for (let pause = 1; ; pause = Math.min(pause * 2, LONGEST_PAUSE_MS)) {
      if (signal?.aborted) throw new OperationCancelledError(signal.reason, false);
      if (takeAll(list)) return true;
      if (!(await pauseAsync(pause, deadline, signal))) return takeAll(list);
    }
  }
}

function checkHandles(handles: unknown, distinct: boolean): Waitable[] {
  if (!Array.isArray(handles)) throw new InvalidArgumentError('handles', `expected an array of synchronization objects, got ${shown(handles)}`);
  const list = [...handles] as unknown[];
  if (list.length === 0 || list.length > WaitHandle.MaxWaitHandles) {
    throw new InvalidArgumentError('handles', `expected 1 to ${WaitHandle.MaxWaitHandles} handles, got ${list.length}`);
  }
  list.forEach((handle, i) => {
    if (!KINDS.some((kind) => handle instanceof kind)) {
      throw new InvalidArgumentError(`handles[${i}]`, `expected a Mutex, Semaphore, ManualResetEvent, AutoResetEvent or CountdownEvent, got ${shown(handle)}`);
    }
    // .NET's DuplicateWaitObjectException: all of them at once cannot count one twice.
    if (distinct && list.indexOf(handle) !== i) throw new InvalidArgumentError(`handles[${i}]`, 'the same object appears twice; waitAll takes each handle once');
  });
  return list as Waitable[];
}

/** The index of the first handle that let this caller through, holding it; undefined when none did. */
function takeAny(list: readonly Waitable[]): number | undefined {
  for (let i = 0; i < list.length; i++) {
    const taken: Taken = list[i]!.tryTakeForWait();
    if (taken === 'abandoned') throw new AbandonedMutexError(list[i], undefined, i);
    if (taken === 'taken') return i;
  }
  return undefined;
}

/** Takes every handle, or none: what was taken before one refused is given back. */
function takeAll(list: readonly Waitable[]): boolean {
  const taken: Taken[] = [];
  for (const handle of list) {
    const outcome: Taken = handle.tryTakeForWait();
    if (outcome === false) {
      for (let i = taken.length - 1; i >= 0; i--) untake(list[i]!, taken[i] === 'abandoned');
      return false;
    }
    taken.push(outcome);
  }
  const abandoned = taken.indexOf('abandoned');
  if (abandoned >= 0) throw new AbandonedMutexError(list[abandoned], undefined, abandoned);
  return true;
}

function untake(handle: Waitable, abandoned: boolean): void {
  if (handle instanceof Mutex) handle.untakeForWait(abandoned);
  else handle.untakeForWait();
}

/** Sleeps this thread for `pause` ms or until the deadline; false when the deadline has passed. */
function pauseBlocking(pause: number, deadline: number): boolean {
  const left = remaining(deadline);
  if (left <= 0) return false;
  Atomics.wait(pauseWord, 0, 0, Math.min(pause, left));
  return true;
}
