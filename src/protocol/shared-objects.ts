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
 * Objects of classes with runspace affinity (and such classes themselves) are
 * found the same way and handed to an {@link ObjectCodec}: the affinity link
 * the value crosses, which knows where each object lives.
 *
 * @module
 */

// Imported for their registration: each primitive registers its reviver.
import '../sync/primitives.js';
import { isShareable, noteCrossed, revive, type SharedHandle } from '../sync/shared-cells.js';

const MARK = '__runspaces_shared__';
const OBJECT_MARK = '__runspaces_object__';
const MAX_DEPTH = 2;

type Marker = { readonly [MARK]: SharedHandle };
type ObjectMarker = { readonly [OBJECT_MARK]: object };

/**
 * Turns objects that are neither plain nor synchronization primitives into
 * markers and back, for one crossing channel.
 */
export interface ObjectCodec {
  /** Thread id of the other end: a synchronization primitive crossing is registered against it. */
  readonly peer: number;
  /** A marker body for `value`, or undefined to let the value cross as it is. */
  encodeObject(value: object): object | undefined;
  decodeObject(marker: object): unknown;
}

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null || Array.isArray(value);
}

export function encodeShared(value: unknown, codec?: ObjectCodec, depth = 0): unknown {
  if (value === null) return value;
  if (typeof value !== 'object') {
    if (typeof value !== 'function' || codec === undefined) return value;
    const marker = codec.encodeObject(value);
    return marker === undefined ? value : ({ [OBJECT_MARK]: marker } satisfies ObjectMarker);
  }
  if (isShareable(value)) {
    const handle = value.toShared();
    if (codec !== undefined) noteCrossed(value, handle, codec.peer, 'out');
    return { [MARK]: handle } satisfies Marker;
  }
  if (!isPlain(value)) {
    const marker = codec?.encodeObject(value);
    return marker === undefined ? value : ({ [OBJECT_MARK]: marker } satisfies ObjectMarker);
  }
  if (depth >= MAX_DEPTH) return value;
  return mapChildren(value, (child) => encodeShared(child, codec, depth + 1));
}

export function decodeShared(value: unknown, codec?: ObjectCodec, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Object.hasOwn(value, MARK)) {
    const handle = (value as Marker)[MARK];
    const primitive = revive(handle) as object;
    if (codec !== undefined) noteCrossed(primitive, handle, codec.peer, 'in');
    return primitive;
  }
  if (codec !== undefined && Object.hasOwn(value, OBJECT_MARK)) return codec.decodeObject((value as ObjectMarker)[OBJECT_MARK]);
  if (depth >= MAX_DEPTH || !isPlain(value)) return value;
  return mapChildren(value, (child) => decodeShared(child, codec, depth + 1));
}

/** Encodes each argument (an argument list is a level of its own). */
export function encodeArgs(args: readonly unknown[], codec?: ObjectCodec): readonly unknown[] {
  return mapChildren(args, (arg) => encodeShared(arg, codec)) as readonly unknown[];
}

export function decodeArgs(args: readonly unknown[], codec?: ObjectCodec): readonly unknown[] {
  return mapChildren(args, (arg) => decodeShared(arg, codec)) as readonly unknown[];
}

/**
 * Calls `visit` with each object marker body in an encoded value, where
 * {@link decodeShared} would find it: to learn what decoding will need
 * before decoding.
 */
export function visitObjectMarkers(value: unknown, visit: (marker: object) => void, depth = 0): void {
  if (value === null || typeof value !== 'object') return;
  if (Object.hasOwn(value, OBJECT_MARK)) {
    visit((value as ObjectMarker)[OBJECT_MARK]);
    return;
  }
  if (depth >= MAX_DEPTH || !isPlain(value) || Object.hasOwn(value, MARK)) return;
  mapChildren(value, (child) => {
    visitObjectMarkers(child, visit, depth + 1);
    return child;
  });
}

/**
 * Applies `map` to each child; returns `value` itself when nothing changed.
 * Every child is looked at: a type check costs far less than the structured
 * clone that copies the same child anyway.
 */
function mapChildren(value: object, map: (child: unknown) => unknown): object {
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const child = value[i];
      if (child === null || (typeof child !== 'object' && typeof child !== 'function')) continue;
      const mapped = map(child);
      if (mapped !== child) (copy ??= value.slice())[i] = mapped;
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const key in value) {
    const child = (value as Record<string, unknown>)[key];
    if (child === null || (typeof child !== 'object' && typeof child !== 'function')) continue;
    const mapped = map(child);
    if (mapped !== child) (copy ??= { ...value })[key] = mapped;
  }
  return copy ?? value;
}
