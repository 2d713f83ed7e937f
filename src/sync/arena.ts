/**
 * The process-wide arena of named synchronization objects, and the cell
 * layout every primitive uses, named or not.
 *
 * A primitive is a *cell*: eight `Int32` slots in shared memory. A named
 * primitive's cell lives in the arena, one `SharedArrayBuffer` that the pool
 * gives every runspace at start, so `open(name)` finds the same cell from any
 * thread without a message. An unnamed primitive's cell is a buffer of its
 * own. Either way the slots mean:
 *
 * ```
 *  slot  name        written by                  meaning
 *  0     STATE       every thread (CAS)          Mutex: 0 free, else the owner's threadId + 1, shifted
 *                                                left, low bit set when it may be waited on (fair:
 *                                                the hand-off protocol of handoff-lock.ts)
 *                                                Semaphore: the current count
 *  1     OWNER       the owner; the supervisor   fair Mutex, ReaderWriterLock writer: threadId + 1, 0 when free
 *  2     RECURSION   the owner                   Mutex: times the owner acquired it beyond the first
 *  3     ABANDONED   the supervisor; acquirer    1 when the last owner died holding it
 *  4     KIND        the creator, once           which primitive the cell is (names must match)
 *  5     MAXIMUM     the creator, once           Semaphore: its maximum count; Mutex: 1 when fair
 *  6     WAITERS     waiters                     how many wait, so a release skips notify when none do
 *  7     ID          the creator, once           process-unique id: the same cell, whichever object views it
 * ```
 *
 * The arena's header is a spin lock for creating names (held for a few
 * hundred nanoseconds), the count of names, and the next cell id; after the
 * cells come the names themselves, UTF-16, 128 units each.
 *
 * @module
 */

import { InvalidArgumentError, SyncArenaFullError } from '../errors.js';
import { setThreadGlobal, threadGlobal } from '../util/thread-globals.js';

export const enum Slot {
  State = 0,
  Owner = 1,
  Recursion = 2,
  Abandoned = 3,
  Kind = 4,
  Maximum = 5,
  Waiters = 6,
  Id = 7,
}
export const CELL_INTS = 8;

export const enum Kind {
  Mutex = 1,
  Semaphore = 2,
  ManualResetEvent = 3,
  AutoResetEvent = 4,
  CountdownEvent = 5,
  ReaderWriterLock = 6,
  Barrier = 7,
}
export const KIND_NAMES: Readonly<Record<number, string>> = {
  [Kind.Mutex]: 'Mutex',
  [Kind.Semaphore]: 'Semaphore',
  [Kind.ManualResetEvent]: 'ManualResetEvent',
  [Kind.AutoResetEvent]: 'AutoResetEvent',
  [Kind.CountdownEvent]: 'CountdownEvent',
  [Kind.ReaderWriterLock]: 'ReaderWriterLock',
  [Kind.Barrier]: 'Barrier',
};

const HEADER_INTS = 8;
const LOCK = 0;
const COUNT = 1;
const NEXT_ID = 2;
export const ARENA_CELLS = 1024;
export const MAX_NAME_LENGTH = 128;
const CELLS_BYTES = (HEADER_INTS + ARENA_CELLS * CELL_INTS) * 4;
const NAME_ENTRY_UNITS = MAX_NAME_LENGTH + 2; // length, padding, then the units
const ARENA_BYTES = CELLS_BYTES + ARENA_CELLS * NAME_ENTRY_UNITS * 2;


/** A cell: the shared slots of one primitive. */
export interface Cell {
  readonly buffer: SharedArrayBuffer;
  /** Index of slot 0 in an Int32Array over `buffer`. */
  readonly base: number;
  readonly slots: Int32Array;
}

/** The arena this thread shares with every runspace of the process. */
export function syncArena(): SharedArrayBuffer {
  return threadGlobal('syncArena', () => new SharedArrayBuffer(ARENA_BYTES));
}

/** Used by a runspace at start, before any user code: adopt the pool's arena. */
export function adoptSyncArena(buffer: SharedArrayBuffer): void {
  setThreadGlobal('syncArena', buffer);
}

export function cellAt(buffer: SharedArrayBuffer, base: number): Cell {
  return { buffer, base, slots: new Int32Array(buffer, base * 4, CELL_INTS) };
}

function nextCellId(): number {
  return Atomics.add(new Int32Array(syncArena(), 0, HEADER_INTS), NEXT_ID, 1) + 1;
}

/** Whether the cell is an unnamed primitive's own buffer (not a cell of the arena). */
export const hasOwnBuffer = (cell: Cell): boolean => cell.buffer.byteLength === CELL_INTS * 4;

export function newCell(kind: Kind): Cell {
  const cell = cellAt(new SharedArrayBuffer(CELL_INTS * 4), 0);
  cell.slots[Slot.Kind] = kind;
  cell.slots[Slot.Id] = nextCellId();
  return cell;
}

/** Every named cell in use, for the supervisor's abandonment scan. */
export function* namedCells(): Generator<Cell> {
  const buffer = syncArena();
  const header = new Int32Array(buffer, 0, HEADER_INTS);
  const count = Atomics.load(header, COUNT);
  for (let i = 0; i < count; i++) yield cellAt(buffer, HEADER_INTS + i * CELL_INTS);
}

/** Strips the `Local\` prefix. `Global\` names are machine-wide, which only `Mutex` offers (it handles them before this). */
export function normalizeName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('name', 'expected a non-empty string');
  if (/^global\\/i.test(name)) {
    throw new InvalidArgumentError('name', `'${name}' asks for a machine-wide object; only Mutex has Global\\ names, other kinds are per process (use Local\\ or a bare name)`);
  }
  const local = name.replace(/^local\\/i, '');
  if (local.length === 0 || local.length > MAX_NAME_LENGTH) {
    throw new InvalidArgumentError('name', `expected 1 to ${MAX_NAME_LENGTH} characters after any Local\\ prefix`);
  }
  return local;
}

function nameMatches(units: Uint16Array, index: number, name: string): boolean {
  const at = index * NAME_ENTRY_UNITS;
  if (units[at] !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (units[at + 2 + i] !== name.charCodeAt(i)) return false;
  return true;
}

/**
 * Finds the named cell, or creates it with `init` when `create` is true.
 * Creation happens under the arena's spin lock, so two threads opening a new
 * name at once get one cell and exactly one of them `createdNew`.
 */
export function lookupNamed(name: string, create: boolean, init: (slots: Int32Array) => void): { cell: Cell; createdNew: boolean } | undefined {
  const buffer = syncArena();
  const header = new Int32Array(buffer, 0, HEADER_INTS);
  const units = new Uint16Array(buffer, CELLS_BYTES);
  const find = (count: number): Cell | undefined => {
    for (let i = 0; i < count; i++) if (nameMatches(units, i, name)) return cellAt(buffer, HEADER_INTS + i * CELL_INTS);
    return undefined;
  };
  const existing = find(Atomics.load(header, COUNT));
  if (existing || !create) return existing ? { cell: existing, createdNew: false } : undefined;
  while (Atomics.compareExchange(header, LOCK, 0, 1) !== 0);
  try {
    const count = Atomics.load(header, COUNT);
    const raced = find(count);
    if (raced) return { cell: raced, createdNew: false };
    if (count >= ARENA_CELLS) throw new SyncArenaFullError(ARENA_CELLS);
    const cell = cellAt(buffer, HEADER_INTS + count * CELL_INTS);
    const at = count * NAME_ENTRY_UNITS;
    units[at] = name.length;
    for (let i = 0; i < name.length; i++) units[at + 2 + i] = name.charCodeAt(i);
    init(cell.slots);
    Atomics.store(cell.slots, Slot.Id, Atomics.add(header, NEXT_ID, 1) + 1);
    // Publishing the count last makes the cell visible only once complete.
    Atomics.store(header, COUNT, count + 1);
    return { cell, createdNew: true };
  } finally {
    Atomics.store(header, LOCK, 0);
  }
}
