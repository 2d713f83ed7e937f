/**
 * Which classes take part in runspace affinity, and how every runspace can
 * find the same class again.
 *
 * A class is known by the module that defines it and its name. Decorating a
 * class (or calling the function form) records both, in the thread where the
 * module ran: that is what "the class is defined in this runspace" means, as
 * PowerShell's "the class is defined in this session state". A runspace that
 * receives a class it has not defined imports its module, which defines it
 * there too.
 *
 * The module is read from the stack of the decorator call, so a user never
 * repeats `import.meta.url`. The registry is one per thread (thread-globals.ts):
 * a runspace runs the library twice (the bundled worker entry and the
 * `runspaces` a user imports), and both must see one registry.
 *
 * @module
 */

import { isAbsolute } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { threadId } from 'node:worker_threads';
import { AffinityClassError } from '../errors.js';
import { threadGlobal } from '../util/thread-globals.js';

/** `affinity`: instances live at home and others hold proxies. `none`: instances are copied. */
export type AffinityKind = 'affinity' | 'none';

/** Where a class can be found again: its module and its name. */
export interface ClassRef {
  readonly module: string;
  readonly name: string;
}

export interface ClassInfo extends ClassRef {
  readonly kind: AffinityKind;
  readonly constructor: Function;
}

/** Names of an instance's methods and of its other properties (fields and accessors). */
export interface Shape {
  readonly methods: readonly string[];
  readonly properties: readonly string[];
}

interface Registry {
  /** Every decorated class of this thread. */
  readonly byClass: WeakMap<Function, ClassInfo>;
  /** The class most recently defined in this thread under each `module#name`. */
  readonly byKey: Map<string, Function>;
  /** Methods and accessors of each prototype chain, computed once. */
  readonly shapes: WeakMap<object, Shape>;
}

/** On a decorated class's prototype: lets an instance find its class with one property read. */
const CLASS_INFO = Symbol.for('runspaces.affinity.class-info');

function registry(): Registry {
  return threadGlobal<Registry>('affinityClasses', () => ({ byClass: new WeakMap(), byKey: new Map(), shapes: new WeakMap() }));
}

function keyOf(ref: ClassRef): string {
  return `${ref.module}#${ref.name}`;
}

const LIBRARY_DIR = fileURLToPath(new URL('../', import.meta.url));

/**
 * The file of the first stack frame outside this library: the module whose
 * top-level code is decorating a class.
 */
export function callerModuleUrl(): string | undefined {
  const original = Error.prepareStackTrace;
  let frames: NodeJS.CallSite[] = [];
  try {
    Error.prepareStackTrace = (_error, callSites) => callSites;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, callerModuleUrl);
    frames = (holder.stack as NodeJS.CallSite[] | undefined) ?? [];
  } finally {
    Error.prepareStackTrace = original;
  }
  for (const frame of frames) {
    const file = frame.getFileName();
    if (!file || file.startsWith('node:')) continue;
    const path = file.startsWith('file:') ? fileURLToPath(file) : file;
    if (path.startsWith(LIBRARY_DIR)) continue;
    if (file.startsWith('file:')) return file;
    return isAbsolute(file) ? pathToFileURL(file).href : undefined;
  }
  return undefined;
}

/** Records `constructor` as defined in this thread. */
export function registerClass(constructor: Function, kind: AffinityKind, module: string | undefined): ClassInfo {
  if (typeof constructor !== 'function' || typeof constructor.prototype !== 'object') {
    throw new TypeError(`Affinity decorators apply to classes; got ${typeof constructor}.`);
  }
  const name = constructor.name;
  if (!name) {
    throw new AffinityClassError('(anonymous)', 'An anonymous class cannot take part in runspace affinity: runspaces find a class by its module and name. Give the class a name.');
  }
  if (module === undefined) {
    throw new AffinityClassError(name, `Could not tell which module defines ${name}. Pass it: runspaceAffinity(${name}, { module: import.meta.url }).`);
  }
  const info: ClassInfo = { kind, module, name, constructor };
  const reg = registry();
  reg.byClass.set(constructor, info);
  reg.byKey.set(keyOf(info), constructor);
  Object.defineProperty(constructor.prototype, CLASS_INFO, { value: info, configurable: true, enumerable: false, writable: false });
  return info;
}

/** The affinity information of a decorated class, or undefined. */
export function classInfo(constructor: Function): ClassInfo | undefined {
  return registry().byClass.get(constructor);
}

/**
 * The affinity information of an instance's class, or undefined when no
 * ancestor is decorated. An instance of an undecorated subclass of an affinity
 * class is refused: it would cross as its parent class and lose its own.
 */
export function instanceClassInfo(instance: object): ClassInfo | undefined {
  const info = (instance as Record<symbol, ClassInfo | undefined>)[CLASS_INFO];
  if (info === undefined) return undefined;
  const prototype = Object.getPrototypeOf(instance) as object | null;
  if (prototype !== info.constructor.prototype) {
    const subclass = (prototype as { constructor?: Function } | null)?.constructor?.name || 'a subclass';
    throw new AffinityClassError(
      subclass,
      `${subclass} extends ${info.name}, which has runspace affinity, but is not decorated itself. Decorate ${subclass} too (runspaceAffinity or noRunspaceAffinity), so runspaces can find it.`,
    );
  }
  return info;
}

/** The class most recently defined in this thread under `ref`, or undefined. */
export function definedClass(ref: ClassRef): Function | undefined {
  return registry().byKey.get(keyOf(ref));
}

/**
 * The class under `ref`, importing its module into this thread when the class
 * is not defined here yet.
 */
export async function loadClass(ref: ClassRef): Promise<Function> {
  const defined = definedClass(ref);
  if (defined !== undefined) return defined;
  try {
    await import(ref.module);
  } catch (error) {
    throw new AffinityClassError(ref.name, `Runspace ${threadId} could not import ${ref.module} to define ${ref.name}: ${(error as Error).message}`, { cause: error });
  }
  const loaded = definedClass(ref);
  if (loaded === undefined) {
    throw new AffinityClassError(
      ref.name,
      `Importing ${ref.module} did not define ${ref.name} in runspace ${threadId}. Define the class, decorated, at the top level of that module.`,
    );
  }
  return loaded;
}

/**
 * Methods and other properties an instance shows through a proxy: functions
 * along its prototype chain (below Object.prototype) are methods, accessors
 * are properties, and so are its own fields, except function-valued ones
 * (arrow-function fields), which are methods.
 */
export function shapeOf(instance: object): Shape {
  const prototype = Object.getPrototypeOf(instance) as object | null;
  const inherited = prototype === null ? { methods: [], properties: [] } : prototypeShape(prototype);
  const ownMethods: string[] = [];
  const ownProperties: string[] = [];
  for (const key of Object.keys(instance)) {
    if (typeof (instance as Record<string, unknown>)[key] === 'function') ownMethods.push(key);
    else ownProperties.push(key);
  }
  if (ownMethods.length === 0 && ownProperties.length === 0) return inherited;
  return { methods: [...inherited.methods, ...ownMethods], properties: [...inherited.properties, ...ownProperties] };
}

function prototypeShape(prototype: object): Shape {
  const shapes = registry().shapes;
  let shape = shapes.get(prototype);
  if (shape !== undefined) return shape;
  const methods = new Set<string>();
  const properties = new Set<string>();
  for (let p: object | null = prototype; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const key of Object.getOwnPropertyNames(p)) {
      if (key === 'constructor' || methods.has(key) || properties.has(key)) continue;
      const descriptor = Object.getOwnPropertyDescriptor(p, key)!;
      if (typeof descriptor.value === 'function') methods.add(key);
      else properties.add(key);
    }
  }
  shape = { methods: [...methods], properties: [...properties] };
  shapes.set(prototype, shape);
  return shape;
}

const FUNCTION_OWN = new Set(['length', 'name', 'prototype', 'arguments', 'caller']);

/** Static methods of a class, its parents' included. */
export function staticMethodsOf(constructor: Function): string[] {
  const methods = new Set<string>();
  for (let c: object | null = constructor; c !== null && c !== Function.prototype; c = Object.getPrototypeOf(c) as object | null) {
    for (const key of Object.getOwnPropertyNames(c)) {
      if (FUNCTION_OWN.has(key)) continue;
      if (typeof Object.getOwnPropertyDescriptor(c, key)!.value === 'function') methods.add(key);
    }
  }
  return [...methods];
}
