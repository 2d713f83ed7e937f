/**
 * Instances of undecorated classes crossing a thread boundary. Structured
 * clone copies such an object's own fields and drops its prototype, so it
 * arrives without its methods (`p.norm is not a function`), silently. By
 * default the affinity link refuses it instead, naming the class and the two
 * decorators that say what should happen: `@NoRunspaceAffinity()` (copied,
 * methods run where it arrives) or `@RunspaceAffinity()` (stays home,
 * called through a proxy). A pool opened with `classInstances: 'plain'`
 * lets them cross as plain data, as structured clone would.
 *
 * Objects of Node itself that hold a handle of this thread (sockets,
 * servers, streams, child processes: event emitters) cannot cross at all;
 * the error says so.
 *
 * @module
 */

import { EventEmitter } from 'node:events';
import { MessagePort } from 'node:worker_threads';
import { UncloneableValueError } from '../errors.js';

/** What a pool does with an instance of an undecorated class: refuse it (the default) or copy its fields. */
export type ClassInstancePolicy = 'refuse' | 'plain';

/**
 * Built-in objects structured clone copies whole (or transfers): not
 * instances of a user's class, whatever their prototype.
 */
function clonedWhole(value: object): boolean {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer || value instanceof Date ||
    value instanceof RegExp || value instanceof Map || value instanceof Set || value instanceof Error || value instanceof Boolean ||
    value instanceof Number || value instanceof String || value instanceof MessagePort || value instanceof Blob;
}

/**
 * On a class's prototype: its instances cross as plain data without being
 * refused. The library's own session object has it: `(ctx) =>
 * ctx.session.set('a', 1)` returns the session (for chaining), and such a
 * result has always crossed as an empty object, harmlessly.
 */
export const CROSSES_AS_PLAIN_DATA = Symbol.for('runspaces.crossesAsPlainData');

/** On the error refusing a value: the value and why, so the sender can name where it sat. */
export const REFUSED_VALUE = Symbol('runspaces.refusedValue');

export interface Refusal {
  readonly value: object;
  readonly detail: string;
}

/** The error for `value` if it must not cross as it is, else undefined. */
export function refusedInstance(value: object): (UncloneableValueError & { readonly [REFUSED_VALUE]: Refusal }) | undefined {
  const detail = refusalOf(value);
  if (detail === undefined) return undefined;
  return Object.assign(new UncloneableValueError('a value', detail), { [REFUSED_VALUE]: { value, detail } });
}

function refusalOf(value: object): string | undefined {
  const prototype = Object.getPrototypeOf(value) as object | null;
  if (prototype === null || prototype === Object.prototype || Array.isArray(value) || clonedWhole(value)) return undefined;
  if (CROSSES_AS_PLAIN_DATA in prototype) return undefined;
  const constructor = (prototype as { constructor?: unknown }).constructor;
  // A class of the engine itself (Promise, WeakMap): structured clone refuses it with its own error.
  if (typeof constructor === 'function' && /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(constructor))) return undefined;
  const name = (constructor as { name?: unknown } | undefined)?.name;
  const className = typeof name === 'string' && name.length > 0 ? name : 'an anonymous class';
  if (value instanceof EventEmitter || value instanceof EventTarget) {
    return `${/^[aeiou]/i.test(className) ? 'an' : 'a'} ${className} holds a handle of this thread (a socket, a server, a stream, a process) and cannot cross to another thread at all; open it inside the runspace instead`;
  }
  return `an instance of class ${className} would arrive without its methods (structured clone copies fields only). Decorate the class with @NoRunspaceAffinity() (copied, its methods run where it arrives) or @RunspaceAffinity() (it stays here, called through a proxy), pass plain data ({ ...value }), or open the pool with classInstances: 'plain'`;
}
