/**
 * Who holds a lock. Across threads, the owner is a thread: its `threadId + 1`
 * sits in the cell's OWNER slot, which is what abandonment detection reads.
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

/** This thread's value in an OWNER slot. */
export const SELF = threadId + 1;

/** The cell ids held by the current async flow (inside `withLock`). */
const flows = new AsyncLocalStorage<ReadonlySet<number>>();

/** Holder of a cell this thread owns: a flow's held-set, or the thread itself. */
export type Holder = ReadonlySet<number> | 'thread';
const holders = new Map<number, Holder>();

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

export function setHolder(cellId: number, holder: Holder): void {
  holders.set(cellId, holder);
}

export function holderOf(cellId: number): Holder | undefined {
  return holders.get(cellId);
}

export function clearHolder(cellId: number): void {
  holders.delete(cellId);
}
