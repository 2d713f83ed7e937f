/**
 * Primitives crossing threads, and the main thread's list of the unnamed
 * ones a runspace may hold (named ones are found in the arena).
 *
 * A primitive crosses as a {@link SharedHandle}: its kind, its cell's buffer
 * and position. The receiving thread rebuilds the primitive around the same
 * memory. Every crossing passes the main thread (runspaces only talk to the
 * pool), so registering there is enough for the supervisor to find every
 * cell a dead runspace may have held.
 *
 * A registration lives only while some runspace may hold the primitive, so
 * a service that passes a fresh mutex per call keeps a flat heap:
 *
 * - the main thread counts, per runspace, the copies it sent there;
 * - a runspace tracks the primitive objects it holds that crossed (copies it
 *   received, and its own primitives it sent out) with a finalization
 *   registry; when its last one is collected it reports the cell released,
 *   with how many copies it had received by then;
 * - the main thread drops that runspace from the cell's holders only when the
 *   report counts every copy sent (a copy still in flight keeps it), and the
 *   cell when no runspace holds it; a runspace that exits is dropped from all
 *   after its abandoned locks were recovered.
 *
 * @module
 */

import { isMainThread } from 'node:worker_threads';
import { cellAt, hasOwnBuffer, namedCells, Slot, type Cell, type Kind } from './arena.js';
import type { LockFile } from './machine/lock-directory.js';

export interface SharedHandle {
  readonly kind: number;
  readonly buffer: SharedArrayBuffer;
  readonly base: number;
  /** The name of a named primitive. */
  readonly name: string | null;
  /** A machine-wide mutex's lock file, which the receiving thread opens for itself. */
  readonly lockFile?: LockFile;
  /** What a Barrier shares besides its cell. */
  readonly barrier?: BarrierExtras;
  /** A ReaderWriterLock handle's recursion policy. */
  readonly recursionPolicy?: 'NoRecursion' | 'SupportsRecursion';
}

/** A Barrier's post-phase action (its source) and where the action's last failure is written. */
export interface BarrierExtras {
  readonly action: string | null;
  readonly failure: SharedArrayBuffer | undefined;
}

// ---- the main thread's side ----------------------------------------------------

interface Crossing {
  readonly cell: Cell;
  /** Runspace thread id → copies the main thread sent it (0 for a runspace that only sent the primitive here). */
  readonly holders: Map<number, number>;
}

const crossed = new Map<number, Crossing>();
/** Runspace thread id → ids of the cells it may hold. */
const heldBy = new Map<number, Set<number>>();

/** The main thread sent (`'out'`) or received (`'in'`) primitive `cell` to or from runspace `peer`. */
function noteCrossing(cell: Cell, peer: number, direction: 'out' | 'in'): void {
  if (!hasOwnBuffer(cell)) return; // arena cells are scanned anyway
  const id = cell.slots[Slot.Id]!;
  let crossing = crossed.get(id);
  if (crossing === undefined) crossed.set(id, (crossing = { cell, holders: new Map() }));
  crossing.holders.set(peer, (crossing.holders.get(peer) ?? 0) + (direction === 'out' ? 1 : 0));
  let ids = heldBy.get(peer);
  if (ids === undefined) heldBy.set(peer, (ids = new Set()));
  ids.add(id);
}

function dropHolder(id: number, peer: number): void {
  const crossing = crossed.get(id);
  if (crossing === undefined) return;
  crossing.holders.delete(peer);
  if (crossing.holders.size === 0) crossed.delete(id);
}

/**
 * Runspace `peer` reports cells whose every crossed copy it held has been
 * collected, each with how many copies it had received by then.
 */
export function noteReleased(peer: number, released: readonly (readonly [id: number, received: number])[]): void {
  for (const [id, received] of released) {
    if (crossed.get(id)?.holders.get(peer) !== received) continue; // a copy is still on its way there
    dropHolder(id, peer);
    heldBy.get(peer)?.delete(id);
  }
}

/** Cells a runspace may hold, registered on the main thread (for tests and diagnostics). */
export function crossedCount(): number {
  return crossed.size;
}

// ---- a runspace's side -----------------------------------------------------------

/** Cell id → primitive objects of this thread, crossed in or out, not yet collected. */
const liveObjects = new Map<number, number>();
/** Cell id → copies this thread received. */
const receivedCopies = new Map<number, number>();
const tracked = new WeakSet<object>();
let pendingReleases: [number, number][] = [];
let releaseSink: ((released: readonly (readonly [number, number])[]) => void) | undefined;

const collected = new FinalizationRegistry<number>((id) => {
  const live = (liveObjects.get(id) ?? 1) - 1;
  if (live > 0) {
    liveObjects.set(id, live);
    return;
  }
  liveObjects.delete(id);
  if (pendingReleases.push([id, receivedCopies.get(id) ?? 0]) === 1) queueMicrotask(flushReleases);
});

function flushReleases(): void {
  const released = pendingReleases;
  pendingReleases = [];
  releaseSink?.(released);
}

/** A runspace says where its release reports go (a message to its pool). */
export function onCellsReleased(sink: (released: readonly (readonly [number, number])[]) => void): void {
  releaseSink = sink;
}

function trackHeld(primitive: object, id: number, received: boolean): void {
  if (received) receivedCopies.set(id, (receivedCopies.get(id) ?? 0) + 1);
  if (tracked.has(primitive)) return;
  tracked.add(primitive);
  liveObjects.set(id, (liveObjects.get(id) ?? 0) + 1);
  collected.register(primitive, id);
}

/**
 * A primitive crossed a thread boundary through this thread: sent
 * (`'out'`) or received (`'in'`), to or from thread `peer` (on the main
 * thread, a runspace; in a runspace, the main thread).
 */
export function noteCrossed(primitive: object, handle: SharedHandle, peer: number, direction: 'out' | 'in'): void {
  const cell = cellAt(handle.buffer, handle.base);
  if (isMainThread) noteCrossing(cell, peer, direction);
  else if (hasOwnBuffer(cell)) trackHeld(primitive, cell.slots[Slot.Id]!, direction === 'in');
}

interface Adopted {
  readonly cell: Cell;
  readonly name: string | null;
  readonly barrier?: BarrierExtras | undefined;
  readonly recursionPolicy?: 'NoRecursion' | 'SupportsRecursion' | undefined;
}

/**
 * Rebuilding a primitive around an existing cell (one that crossed from
 * another thread, or a named one from the arena). Private fields can only be
 * set by a constructor, so `adoptCell` leaves the cell where the class's
 * constructor picks it up with `takeAdopted()` instead of making a new one.
 */
let adopted: Adopted | undefined;

export function adoptCell<T>(cell: Cell, name: string | null, make: () => T, extras?: Pick<Adopted, 'barrier' | 'recursionPolicy'>): T {
  adopted = { cell, name, ...extras };
  try {
    return make();
  } finally {
    adopted = undefined;
  }
}

export function takeAdopted(): Adopted | undefined {
  const taken = adopted;
  adopted = undefined;
  return taken;
}

/** What crosses a thread boundary in place of a primitive. */
export function shareCell(kind: Kind, cell: Cell, name: string | null, more?: Pick<SharedHandle, 'lockFile' | 'barrier' | 'recursionPolicy'>): SharedHandle {
  return more === undefined ? { kind, buffer: cell.buffer, base: cell.base, name } : { kind, buffer: cell.buffer, base: cell.base, name, ...more };
}

type Reviver = (cell: Cell, handle: SharedHandle) => unknown;
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
  const reviver = revivers.get(handle.kind);
  if (reviver === undefined) throw new Error(`unknown synchronization object kind ${handle.kind}`);
  return reviver(cell, handle);
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
  // Only cells that crossed to or from the dead runspace can be owned by it.
  const ids = heldBy.get(threadId);
  heldBy.delete(threadId);
  for (const id of ids ?? []) {
    const crossing = crossed.get(id);
    if (crossing === undefined) continue;
    recover(crossing.cell);
    dropHolder(id, threadId);
  }
  return recovered;
}
