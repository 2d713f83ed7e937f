/**
 * Synchronization primitives inside `using` values, arguments and results.
 * Structured clone would turn a `Mutex` into an empty object; instead each
 * primitive crosses as a marker carrying its shared cell, and the receiving
 * side rebuilds it around the same memory: the same lock, transparently.
 *
 * Primitives are found at the top level of a value and up to two levels of
 * plain objects and arrays below it (`using: { locks: { status: mutex } }`);
 * deeper ones cross as plain objects. Values without primitives are passed
 * through untouched, so the common case costs one type check per value.
 *
 * @module
 */

// Imported for their registration: each primitive registers its reviver.
import '../sync/primitives.js';
import { isShareable, revive, type SharedHandle } from '../sync/shared-cells.js';

const MARK = '__runspaces_shared__';
const MAX_DEPTH = 2;
const MAX_SCANNED = 256;

type Marker = { readonly [MARK]: SharedHandle };

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null || Array.isArray(value);
}

export function encodeShared(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (isShareable(value)) return { [MARK]: value.toShared() } satisfies Marker;
  if (depth >= MAX_DEPTH || !isPlain(value)) return value;
  return mapChildren(value, (child) => encodeShared(child, depth + 1));
}

export function decodeShared(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Object.hasOwn(value, MARK)) return revive((value as Marker)[MARK]);
  if (depth >= MAX_DEPTH || !isPlain(value)) return value;
  return mapChildren(value, (child) => decodeShared(child, depth + 1));
}

/** Encodes each argument (an argument list is a level of its own). */
export function encodeArgs(args: readonly unknown[]): readonly unknown[] {
  return mapChildren(args, (arg) => encodeShared(arg)) as readonly unknown[];
}

export function decodeArgs(args: readonly unknown[]): readonly unknown[] {
  return mapChildren(args, (arg) => decodeShared(arg)) as readonly unknown[];
}

/** Applies `map` to each child; returns `value` itself when nothing changed. */
function mapChildren(value: object, map: (child: unknown) => unknown): object {
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    const scanned = Math.min(value.length, MAX_SCANNED);
    for (let i = 0; i < scanned; i++) {
      const child = value[i];
      if (child === null || typeof child !== 'object') continue;
      const mapped = map(child);
      if (mapped !== child) (copy ??= value.slice())[i] = mapped;
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  let scanned = 0;
  for (const key in value) {
    if (++scanned > MAX_SCANNED) break;
    const child = (value as Record<string, unknown>)[key];
    if (child === null || typeof child !== 'object') continue;
    const mapped = map(child);
    if (mapped !== child) (copy ??= { ...value })[key] = mapped;
  }
  return copy ?? value;
}
