/**
 * Finding *which* value failed to cross. `postMessage` throws a DataCloneError
 * that does not say where the offending value sits in a deep structure; this
 * walks the values that were about to be sent and names the first path that
 * cannot be cloned. It runs only after a send failed, so the happy path pays
 * nothing.
 *
 * The walk is built for hostile input: it keeps its own stack (a value nested
 * 100,000 levels deep does not overflow the call stack), looks at each object
 * once (linear time: containers are opened, never cloned whole, and a leaf
 * object is cloned alone), builds a path string only for the value it
 * reports, and never lets a throwing getter or Proxy trap escape: such a
 * value is reported as one that could not be inspected.
 *
 * @module
 */

import { types } from 'node:util';
import { messageOf, UncloneableValueError, UsingFunctionError } from '../errors.js';

/** One value to look at, with what is needed to name its path if it is the one. */
interface Step {
  readonly value: unknown;
  readonly parent: Step | undefined;
  /** How this value is reached from its parent: `.key`, `[3]`, `.get(k)`, `[set 2]`. */
  readonly segment: string;
  /** What reading it threw (a getter, a Proxy trap), when it could not be read. */
  readonly failure?: { readonly error: unknown };
}

type Found = UncloneableValueError | UsingFunctionError;

/**
 * Returns the error describing the first uncloneable value under `root`, or
 * undefined when everything clones (then the failure was elsewhere).
 */
export function findUncloneable(
  root: unknown,
  rootPath: string,
  /** `'using'`: a function found is a {@link UsingFunctionError}, as PowerShell refuses script blocks in `$using:`. */
  role: 'using' | 'value' = 'value',
  /** A value refused for a reason of its own (an instance of an undecorated class): found by identity, reported with `detail`. */
  refused?: { readonly value: object; readonly detail: string },
): Found | undefined {
  const seen = new Set<object>();
  const stack: Step[] = [{ value: root, parent: undefined, segment: rootPath }];
  for (let step = stack.pop(); step !== undefined; step = stack.pop()) {
    const { value } = step;
    if (step.failure !== undefined) return notInspectable(step, step.failure.error);
    if (typeof value === 'function') {
      const path = pathOf(step);
      return role === 'using' ? new UsingFunctionError(path) : new UncloneableValueError(path, 'functions cannot be copied between threads');
    }
    if (typeof value === 'symbol') return new UncloneableValueError(pathOf(step), 'symbols cannot be copied between threads');
    if (value === null || typeof value !== 'object' || seen.has(value)) continue;
    seen.add(value);
    if (refused !== undefined && value === refused.value) return new UncloneableValueError(pathOf(step), refused.detail);
    if (types.isProxy(value)) return new UncloneableValueError(pathOf(step), 'a Proxy cannot be copied between threads');
    let children: Step[] | undefined;
    try {
      children = childrenOf(value, step);
    } catch (error) {
      return notInspectable(step, error);
    }
    if (children !== undefined) {
      // Reversed, so the first child is looked at first: the report names the first bad value in order.
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
      continue;
    }
    try {
      structuredClone(value);
    } catch (error) {
      const kind = safeConstructorName(value);
      return new UncloneableValueError(pathOf(step), `${kind} (${messageOf(error)})`, { cause: error });
    }
  }
  return undefined;
}

/**
 * The children structured clone would copy, for the containers it copies
 * member by member (arrays, Maps, Sets, plain objects and class instances,
 * which it copies as plain objects); undefined for anything else, which is
 * then cloned alone. Reading a child may run a getter: it may throw.
 */
function childrenOf(value: object, parent: Step): Step[] | undefined {
  if (Array.isArray(value)) {
    const children: Step[] = [];
    for (const key of Object.keys(value)) children.push(read(value, key, parent, `[${key}]`));
    return children;
  }
  if (value instanceof Map) {
    const children: Step[] = [];
    for (const [key, child] of value) {
      children.push({ value: key, parent, segment: `[map key ${children.length / 2}]` });
      children.push({ value: child, parent, segment: `.get(${safeString(key)})` });
    }
    return children;
  }
  if (value instanceof Set) {
    const children: Step[] = [];
    for (const child of value) children.push({ value: child, parent, segment: `[set ${children.length}]` });
    return children;
  }
  if (Object.prototype.toString.call(value) !== '[object Object]') return undefined;
  const children: Step[] = [];
  for (const key of Object.keys(value)) children.push(read(value, key, parent, `.${key}`));
  return children;
}

/** One property as a step; a getter that throws becomes a step that reports it. */
function read(value: object, key: string, parent: Step, segment: string): Step {
  try {
    return { value: (value as Record<string, unknown>)[key], parent, segment };
  } catch (error) {
    return { value: undefined, parent, segment, failure: { error } };
  }
}

function notInspectable(step: Step, error: unknown): UncloneableValueError {
  return new UncloneableValueError(pathOf(step), `it could not be inspected (${messageOf(error)})`, { cause: error });
}

/** The path of a step: built only for the value reported, so a deep walk stays linear. */
function pathOf(step: Step): string {
  const segments: string[] = [];
  for (let at: Step | undefined = step; at !== undefined; at = at.parent) segments.push(at.segment);
  return segments.reverse().join('');
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return '?';
  }
}

function safeConstructorName(value: object): string {
  try {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name.length > 0 ? name : 'object';
  } catch {
    return 'object';
  }
}
