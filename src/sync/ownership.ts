/**
 * Who holds a lock. Across threads, the owner is a thread: its `threadId + 1`
 * (`SELF`) sits in the lock word of an unfair mutex, or in the cell's OWNER
 * slot (fair mutex, reader-writer lock's writer), which is what abandonment
 * detection reads.
 *
 * Within a thread, async code needs a sharper owner than the thread: two
 * async tasks of one thread must never both hold a mutex, yet code inside
 * `withLock` must be able to take the same mutex again. So each `withLock`
 * runs its callback in an async flow (AsyncLocalStorage) that carries the ids
 * of the cells it holds, and this thread remembers, per held cell, whether a
 * flow or the thread itself (`waitOne`, or `acquire` outside any `withLock`)
 * holds it.
 *
 * @module
 */

import { AsyncLocalStorage } from 'node:async_hooks';
import { threadId } from 'node:worker_threads';

/** This thread's owner id, in a lock word or an OWNER slot. */
export const SELF = threadId + 1;

/** The cell ids held by the current async flow (inside `withLock`). */
const flows = new AsyncLocalStorage<ReadonlySet<number>>();

/** Holder of a cell this thread owns: a flow's held-set, or the thread itself. */
export type Holder = ReadonlySet<number> | 'thread';

/**
 * This thread's view of one cell, shared by every object of this thread that
 * wraps the cell (a mutex revived twice is still one lock). Kept on the
 * object, so the hot path reads a field instead of looking anything up.
 */
export interface LocalCell {
  /** Who in this thread holds the cell; undefined when this thread does not. */
  holder: Holder | undefined;
  /** `withLock` flows of this thread currently holding it (0 skips the AsyncLocalStorage read). */
  flows: number;
  /** Async acquirers of this thread waiting for the cell (0 lets a free lock be taken at once). */
  waiting: number;
  /** Settles when the last async acquirer in this thread's line has its turn (acquired or gave up). */
  line: Promise<void> | undefined;
}

const locals = new Map<number, WeakRef<LocalCell>>();
const forget = new FinalizationRegistry<number>((id) => {
  if (locals.get(id)?.deref() === undefined) locals.delete(id);
});

export function localCell(cellId: number): LocalCell {
  const existing = locals.get(cellId)?.deref();
  if (existing) return existing;
  const local: LocalCell = { holder: undefined, flows: 0, waiting: 0, line: undefined };
  locals.set(cellId, new WeakRef(local));
  forget.register(local, cellId);
  return local;
}

export function flowHolds(cellId: number): boolean {
  return flows.getStore()?.has(cellId) ?? false;
}

/** Runs `fn` in a new async flow that holds `cellId` besides what the current flow holds. */
export function runHolding<T>(cellId: number, fn: () => T): T {
  const held = new Set(flows.getStore());
  held.add(cellId);
  return flows.run(held, fn);
}

export function currentFlowHolder(): ReadonlySet<number> | undefined {
  return flows.getStore();
}
