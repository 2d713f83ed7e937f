/**
 * Opening named primitives: the `open` / `openExisting` / `tryOpenExisting`
 * trio every kind shares, with the kind check that keeps one name to one kind.
 * Each cell returned carries one counted handle (see arena.ts), which the
 * object built around it owns.
 *
 * @module
 */

import { WaitHandleKindError, WaitHandleNotFoundError } from '../errors.js';
import { KIND_NAMES, lookupNamed, normalizeName, releaseNamed, Slot, type Cell, type Kind } from './arena.js';

export interface NamedCell {
  readonly cell: Cell;
  /** The name without its `Local\` prefix. */
  readonly name: string;
  readonly createdNew: boolean;
}

/** Refuses a cell of another kind, giving back the handle its lookup counted. */
function checkKind(cell: Cell, kind: Kind, asked: string): void {
  const found = Atomics.load(cell.slots, Slot.Kind);
  if (found === kind) return;
  releaseNamed(cell);
  throw new WaitHandleKindError(asked, KIND_NAMES[found] ?? 'unknown object', KIND_NAMES[kind] ?? 'object');
}

/** The cell of this name, created with `init` (which must set nothing but the cell's own slots) when new. */
export function openNamed(kind: Kind, name: string, init: (slots: Int32Array) => void): NamedCell {
  return openNamedKey(kind, normalizeName(name), name, init);
}

/** As `openNamed`, for a key already made from the name the user asked for (`asked`). */
export function openNamedKey(kind: Kind, key: string, asked: string, init: (slots: Int32Array) => void): NamedCell {
  const found = lookupNamed(key, true, (slots) => {
    slots[Slot.Kind] = kind;
    init(slots);
  })!;
  checkKind(found.cell, kind, asked);
  return { cell: found.cell, name: key, createdNew: found.createdNew };
}

/**
 * The named object of this kind, or undefined when there is none, or when
 * the name belongs to another kind: .NET's `TryOpenExisting` returns false
 * then (`NameUsedByOtherSynchronizationPrimitive` in its tests), where
 * `OpenExisting` throws.
 */
export function tryOpenExistingNamed(kind: Kind, name: string): NamedCell | undefined {
  return tryOpenExistingKey(kind, normalizeName(name));
}

function tryOpenExistingKey(kind: Kind, key: string): NamedCell | undefined {
  const found = lookupNamed(key, false, () => undefined);
  if (found === undefined) return undefined;
  if (Atomics.load(found.cell.slots, Slot.Kind) !== kind) {
    releaseNamed(found.cell);
    return undefined;
  }
  return { cell: found.cell, name: key, createdNew: false };
}

/** The named object of this kind; throws `WaitHandleNotFoundError`, or `WaitHandleKindError` when the name belongs to another kind. */
export function openExistingNamed(kind: Kind, name: string): NamedCell {
  const key = normalizeName(name);
  const found = lookupNamed(key, false, () => undefined);
  if (found === undefined) throw new WaitHandleNotFoundError(name);
  checkKind(found.cell, kind, name);
  return { cell: found.cell, name: key, createdNew: false };
}
