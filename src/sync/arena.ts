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
 * The arena's header is a spin lock for opening and freeing names (held for
 * a few hundred nanoseconds), the count of entries ever used, and the next
 * cell id; after the cells come the names themselves, UTF-16, 128 units
 * each, then each name's count of live handles.
 *
 * ## Freeing names
 * Every object that views a named cell, in any thread, counts as a handle:
 * one made by `open`, one made when a primitive crosses to another thread
 * (counted by the sender, so a copy in flight keeps the name), each dropped
 * by `dispose()` or when the object is collected. When the count reaches 0
 * the entry is free: its name length is set to 0 (lookups skip it) and the
 * next new name takes it, with its slots zeroed and a fresh cell id, so state
 * a thread kept by the old id never applies to the new object. Opening and
 * freeing both take the spin lock: an open cannot find a name in the instant
 * its last handle frees it.
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
const NAME_ENTRY_UNITS = MAX_NAME_LENGTH + 2; // length (0: a free entry), padding, then the units
const NAMES_BYTES = ARENA_CELLS * NAME_ENTRY_UNITS * 2;
const ARENA_BYTES = CELLS_BYTES + NAMES_BYTES + ARENA_CELLS * 4;


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
  const units = new Uint16Array(buffer, CELLS_BYTES);
  const count = Atomics.load(header, COUNT);
  for (let i = 0; i < count; i++) if (Atomics.load(units, i * NAME_ENTRY_UNITS) !== 0) yield cellAt(buffer, HEADER_INTS + i * CELL_INTS);
}

/** Names in use right now (entries not freed). */
export function namedCount(): number {
  let count = 0;
  for (const _ of namedCells()) count++;
  return count;
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
 * Finds the named cell, or creates it with `init` when `create` is true, and
 * counts one more handle on it. Under the arena's spin lock, so two threads
 * opening a new name at once get one cell and exactly one of them
 * `createdNew`, and no open finds a name its last handle is freeing.
 */
export function lookupNamed(name: string, create: boolean, init: (slots: Int32Array) => void): { cell: Cell; createdNew: boolean } | undefined {
  const arena = arenaViews();
  const { buffer, header, units, handles } = arena;
  lockArena(header);
  try {
    const count = Atomics.load(header, COUNT);
    let free = -1;
    for (let i = 0; i < count; i++) {
      if (units[i * NAME_ENTRY_UNITS] === 0) {
        if (free < 0) free = i;
        continue;
      }
      if (!nameMatches(units, i, name)) continue;
      Atomics.add(handles, i, 1);
      return { cell: cellAt(buffer, HEADER_INTS + i * CELL_INTS), createdNew: false };
    }
    if (!create) return undefined;
    const index = free >= 0 ? free : count;
    if (index >= ARENA_CELLS) throw new SyncArenaFullError(ARENA_CELLS);
    const cell = cellAt(buffer, HEADER_INTS + index * CELL_INTS);
    // A reused entry starts clean: a fresh id, so no thread's state for the old object applies.
    cell.slots.fill(0);
    const at = index * NAME_ENTRY_UNITS;
    for (let i = 0; i < name.length; i++) units[at + 2 + i] = name.charCodeAt(i);
    init(cell.slots);
    Atomics.store(cell.slots, Slot.Id, Atomics.add(header, NEXT_ID, 1) + 1);
    Atomics.store(handles, index, 1);
    // The length last: the entry is found only once complete.
    Atomics.store(units, at, name.length);
    if (index === count) Atomics.store(header, COUNT, count + 1);
    return { cell, createdNew: true };
  } finally {
    Atomics.store(header, LOCK, 0);
  }
}

/** True when a name is in use, without counting a handle. */
export function namedExists(name: string): boolean {
  const { header, units } = arenaViews();
  const count = Atomics.load(header, COUNT);
  for (let i = 0; i < count; i++) if (nameMatches(units, i, name)) return true;
  return false;
}

/** One more handle on a named cell that already has one (a copy about to cross to another thread). */
export function retainNamed(cell: Cell): void {
  Atomics.add(arenaViews().handles, arenaIndex(cell), 1);
}

/** One handle fewer on a named cell; the last one frees the name. */
export function releaseNamed(cell: Cell): void {
  const { header, units, handles } = arenaViews();
  const index = arenaIndex(cell);
  lockArena(header);
  try {
    if (Atomics.sub(handles, index, 1) !== 1) return;
    Atomics.store(units, index * NAME_ENTRY_UNITS, 0);
  } finally {
    Atomics.store(header, LOCK, 0);
  }
}

function arenaIndex(cell: Cell): number {
  return (cell.base - HEADER_INTS) / CELL_INTS;
}

interface ArenaViews {
  readonly buffer: SharedArrayBuffer;
  readonly header: Int32Array;
  readonly units: Uint16Array;
  readonly handles: Int32Array;
}
let views: ArenaViews | undefined;

/** Views of this thread's arena, made once (a primitive crossing counts a handle here every time). */
function arenaViews(): ArenaViews {
  const buffer = syncArena();
  if (views?.buffer === buffer) return views;
  return (views = {
    buffer,
    header: new Int32Array(buffer, 0, HEADER_INTS),
    units: new Uint16Array(buffer, CELLS_BYTES, NAMES_BYTES / 2),
    handles: new Int32Array(buffer, CELLS_BYTES + NAMES_BYTES, ARENA_CELLS),
  });
}

function lockArena(header: Int32Array): void {
  while (Atomics.compareExchange(header, LOCK, 0, 1) !== 0);
}
