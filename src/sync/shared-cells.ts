/**
 * Primitives crossing threads, and the main thread's list of the unnamed
 * ones that did (named ones are found in the arena).
 *
 * A primitive crosses as a {@link SharedHandle}: its kind, its cell's buffer
 * and position. The receiving thread rebuilds the primitive around the same
 * memory. Every crossing passes the main thread (runspaces only talk to the
 * pool), so registering there is enough for the supervisor to find every
 * cell a dead runspace may have held.
 *
 * @module
 */

import { isMainThread } from 'node:worker_threads';
import { cellAt, Kind, namedCells, Slot, type Cell } from './arena.js';
import { unlockFair } from './handoff-lock.js';

export interface SharedHandle {
  readonly kind: number;
  readonly buffer: SharedArrayBuffer;
  readonly base: number;
  /** The name of a named primitive; for a Barrier, the source of its post-phase action. */
  readonly name: string | null;
}

const crossed = new Map<number, Cell>();

/** Called whenever a primitive crosses on the main thread. */
export function noteCrossing(cell: Cell): void {
  if (!isMainThread || cell.buffer.byteLength > 64) return; // arena cells are scanned anyway
  const id = cell.slots[Slot.Id]!;
  if (!crossed.has(id)) crossed.set(id, cell);
}

type Reviver = (cell: Cell, name: string | null) => unknown;
const revivers = new Map<number, Reviver>();
const sharedClasses = new Set<Function>();

/** A primitive that can cross threads: it has a shared cell and `toShared()`. */
export interface Shareable {
  toShared(): SharedHandle;
}

/** Each primitive kind registers how to rebuild itself around a cell. */
export function registerReviver(kind: Kind, ctor: Function, reviver: Reviver): void {
  revivers.set(kind, reviver);
  sharedClasses.add(ctor);
}

export function isShareable(value: object): value is Shareable {
  return sharedClasses.has(value.constructor);
}

export function revive(handle: SharedHandle): unknown {
  const cell = cellAt(handle.buffer, handle.base);
  noteCrossing(cell);
  const reviver = revivers.get(handle.kind);
  if (reviver === undefined) throw new Error(`unknown synchronization object kind ${handle.kind}`);
  return reviver(cell, handle.name);
}

/**
 * A runspace (thread `threadId`) died. Every mutex it owned is freed and
 * flagged abandoned, and its waiters are woken: the next one to take it owns
 * it and is told. Returns how many mutexes were recovered.
 */
export function recoverAbandoned(threadId: number): number {
  const owner = threadId + 1;
  let recovered = 0;
  const recover = (cell: Cell): void => {
    const slots = cell.slots;
    const kind = Atomics.load(slots, Slot.Kind);
    if (kind === Kind.ReaderWriterLock) {
      // A writer that died inside: free the lock and let everyone look again.
      if (Atomics.load(slots, Slot.State) === -1 && Atomics.compareExchange(slots, Slot.Owner, owner, 0) === owner) {
        Atomics.store(slots, Slot.State, 0);
        // Its sleepers watch the epoch in the RECURSION slot (see reader-writer-lock.ts).
        Atomics.add(slots, Slot.Recursion, 1);
        Atomics.notify(slots, Slot.Recursion);
        recovered++;
      }
      return;
    }
    if (kind !== Kind.Mutex) return;
    if (Atomics.compareExchange(slots, Slot.Owner, owner, 0) !== owner) return;
    Atomics.store(slots, Slot.Recursion, 0);
    // Flag first, then free: whoever takes the freed mutex sees the flag.
    Atomics.store(slots, Slot.Abandoned, 1);
    if (slots[Slot.Maximum] === 1) {
      unlockFair(slots); // a fair mutex goes to its longest waiter, as on any release
    } else {
      Atomics.store(slots, Slot.State, 0);
      Atomics.notify(slots, Slot.State);
    }
    recovered++;
  };
  for (const cell of namedCells()) recover(cell);
  for (const cell of crossed.values()) recover(cell);
  return recovered;
}
