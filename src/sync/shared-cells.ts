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
import { cellAt, namedCells, Slot, type Cell, type Kind } from './arena.js';
import type { LockFile } from './machine/lock-directory.js';

export interface SharedHandle {
  readonly kind: number;
  readonly buffer: SharedArrayBuffer;
  readonly base: number;
  /** The name of a named primitive; for a Barrier, the source of its post-phase action. */
  readonly name: string | null;
  /** A machine-wide mutex's lock file, which the receiving thread opens for itself. */
  readonly lockFile?: LockFile;
}

const crossed = new Map<number, Cell>();

/** Called whenever a primitive crosses on the main thread. */
export function noteCrossing(cell: Cell): void {
  if (!isMainThread || cell.buffer.byteLength > 64) return; // arena cells are scanned anyway
  const id = cell.slots[Slot.Id]!;
  if (!crossed.has(id)) crossed.set(id, cell);
}

/**
 * Rebuilding a primitive around an existing cell (one that crossed from
 * another thread, or a named one from the arena). Private fields can only be
 * set by a constructor, so `adoptCell` leaves the cell where the class's
 * constructor picks it up with `takeAdopted()` instead of making a new one.
 */
let adopted: { readonly cell: Cell; readonly name: string | null } | undefined;

export function adoptCell<T>(cell: Cell, name: string | null, make: () => T): T {
  adopted = { cell, name };
  try {
    return make();
  } finally {
    adopted = undefined;
  }
}

export function takeAdopted(): { readonly cell: Cell; readonly name: string | null } | undefined {
  const taken = adopted;
  adopted = undefined;
  return taken;
}

/** What crosses a thread boundary in place of a primitive. */
export function shareCell(kind: Kind, cell: Cell, name: string | null, lockFile?: LockFile): SharedHandle {
  noteCrossing(cell);
  return lockFile === undefined ? { kind, buffer: cell.buffer, base: cell.base, name } : { kind, buffer: cell.buffer, base: cell.base, name, lockFile };
}

type Reviver = (cell: Cell, name: string | null, lockFile: LockFile | undefined) => unknown;
/** Frees what a dead owner (its OWNER-slot value) held in `slots`; true when it held something. */
type Recoverer = (slots: Int32Array, deadOwner: number) => boolean;

const revivers = new Map<number, Reviver>();
const recoverers = new Map<number, Recoverer>();
const sharedClasses = new Set<Function>();

/** A primitive that can cross threads: it has a shared cell and `toShared()`. */
export interface Shareable {
  toShared(): SharedHandle;
}

/**
 * Each primitive kind registers how to rebuild itself around a cell and, if
 * it has owners, how to free what a dead owner held.
 */
export function registerKind(kind: Kind, ctor: Function, reviver: Reviver, recover?: Recoverer): void {
  revivers.set(kind, reviver);
  if (recover) recoverers.set(kind, recover);
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
  return reviver(cell, handle.name, handle.lockFile);
}

/**
 * A runspace (thread `threadId`) died. Whatever it owned, in the arena or
 * among the primitives that crossed threads, is freed by its kind's recovery
 * (a mutex passes to its next owner, flagged abandoned). Returns how many
 * primitives were recovered.
 */
export function recoverAbandoned(threadId: number): number {
  const owner = threadId + 1;
  let recovered = 0;
  const recover = (cell: Cell): void => {
    if (recoverers.get(Atomics.load(cell.slots, Slot.Kind))?.(cell.slots, owner)) recovered++;
  };
  for (const cell of namedCells()) recover(cell);
  for (const cell of crossed.values()) recover(cell);
  return recovered;
}
