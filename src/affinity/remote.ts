/**
 * Proxies: what a runspace holds in place of an object (or a class) that
 * lives in another runspace. A proxy's methods send calls home and return
 * promises; its fields cannot be read synchronously and say so.
 *
 * A proxy is a `Proxy` around an object whose prototype carries one function
 * per method of the remote object, shared by all proxies of the same shape, so
 * calling a method costs a property lookup and a message. Each proxy has a
 * {@link RemoteState}: which link reaches its home, which exported object it
 * stands for, and how many crossings of that object it holds (given back when
 * it is released or collected).
 *
 * @module
 */

import { inspect } from 'node:util';
import { AffinityClassError, RemotePropertyError } from '../errors.js';
import { threadGlobal } from '../util/thread-globals.js';
import type { CallOp } from '../protocol/affinity-messages.js';
import { definedClass, type ClassRef } from './class-registry.js';

/** The side of a link that proxies call through. */
export interface RemoteEndpoint {
  call(state: RemoteState, op: CallOp, name: string, args: readonly unknown[]): Promise<unknown>;
  release(state: RemoteState, proxy: object): void;
}

export interface RemoteState {
  readonly endpoint: RemoteEndpoint;
  /** Id of the object among the exports of the link's other end. */
  readonly target: number;
  readonly className: string;
  /** Thread id of the runspace where the object itself lives (0: the main thread). */
  readonly home: number;
  readonly methods: readonly string[];
  readonly properties: ReadonlySet<string>;
  /** For a class handle: the class, so a caller that defines it later runs statics locally. */
  readonly cls: ClassRef | undefined;
  /** Crossings of the object this proxy holds; given back on release. */
  crossings: number;
  released: boolean;
}

/** Proxies and their states, one map per thread whichever copy of this module asks (see thread-globals.ts). */
const states = threadGlobal('affinityRemotes', () => new WeakMap<object, RemoteState>());

/** The state of a proxy made by this library, or undefined for any other value. */
export function remoteState(value: unknown): RemoteState | undefined {
  return (typeof value === 'object' || typeof value === 'function') && value !== null ? states.get(value) : undefined;
}

function stateOf(proxy: unknown, what: string): RemoteState {
  const state = remoteState(proxy);
  if (state === undefined) throw new TypeError(`${what} expects a proxy of an object in another runspace.`);
  return state;
}

const prototypes = new Map<string, object>();

function prototypeFor(className: string, methods: readonly string[]): object {
  const key = `${className}\0${methods.join('\0')}`;
  let prototype = prototypes.get(key);
  if (prototype !== undefined) return prototype;
  // Object.prototype below, so a proxy prints, compares and converts like any object.
  prototype = Object.create(Object.prototype) as object;
  for (const name of methods) {
    Object.defineProperty(prototype, name, {
      value: {
        [name](this: unknown, ...args: unknown[]): Promise<unknown> {
          const state = stateOf(this, `${className}.${name}`);
          return state.endpoint.call(state, 'call', name, args);
        },
      }[name],
      writable: false,
      enumerable: false,
    });
  }
  Object.defineProperty(prototype, Symbol.toStringTag, { value: `Remote ${className}` });
  Object.defineProperty(prototype, inspect.custom, {
    value(this: unknown) {
      const state = remoteState(this);
      return state === undefined ? `[Remote ${className}]` : `[Remote ${className} in runspace ${state.home}${state.released ? ', released' : ''}]`;
    },
  });
  prototypes.set(key, prototype);
  return prototype;
}

const instanceHandler: ProxyHandler<object> = {
  get(target, key, receiver) {
    if (typeof key === 'string') {
      const state = states.get(receiver as object);
      if (state?.properties.has(key)) throw new RemotePropertyError(state.className, key, state.home, false);
    }
    return Reflect.get(target, key, receiver);
  },
  set(_target, key, _value, receiver) {
    const state = states.get(receiver as object);
    throw new RemotePropertyError(state?.className ?? 'a remote object', String(key), state?.home ?? -1, true);
  },
  defineProperty(_target, key) {
    throw new RemotePropertyError('a remote object', String(key), -1, true);
  },
  deleteProperty(_target, key) {
    throw new RemotePropertyError('a remote object', String(key), -1, true);
  },
};

export interface RemoteSpec {
  readonly target: number;
  readonly className: string;
  readonly home: number;
  readonly methods: readonly string[];
  readonly properties: readonly string[];
}

/** A proxy of an instance that lives across `endpoint`. */
export function createRemoteInstance(endpoint: RemoteEndpoint, spec: RemoteSpec): object {
  const proxy = new Proxy(Object.create(prototypeFor(spec.className, spec.methods)) as object, instanceHandler);
  states.set(proxy, {
    endpoint,
    target: spec.target,
    className: spec.className,
    home: spec.home,
    methods: spec.methods,
    properties: new Set(spec.properties),
    cls: undefined,
    crossings: 1,
    released: false,
  });
  return proxy;
}

/**
 * A handle of an affinity class this runspace has not defined. Its static
 * methods return promises: they run here once this runspace defines the
 * class (statics bind when they are called), else in the runspace the handle
 * came from. Constructing it is refused: an instance created here would need
 * the class here.
 */
export function createRemoteClass(endpoint: RemoteEndpoint, spec: RemoteSpec & { readonly cls: ClassRef }): Function {
  const { cls } = spec;
  const handle = {
    [spec.className]: function (): never {
      throw new AffinityClassError(
        cls.name,
        `${cls.name} is not defined in this runspace, so it cannot be constructed here. Import ${cls.module} in this runspace (then the class is yours), or create the instance where the class is defined and pass it.`,
      );
    },
  }[spec.className]!;
  for (const name of spec.methods) {
    Object.defineProperty(handle, name, {
      value: (...args: unknown[]): Promise<unknown> => {
        const local = definedClass(cls) as unknown as Record<string, (...a: unknown[]) => unknown> | undefined;
        if (local !== undefined) {
          try {
            return Promise.resolve(local[name]!(...args));
          } catch (error) {
            return Promise.reject(error);
          }
        }
        return state.endpoint.call(state, 'call', name, args);
      },
    });
  }
  const state: RemoteState = {
    endpoint,
    target: spec.target,
    className: spec.className,
    home: spec.home,
    methods: spec.methods,
    properties: new Set(),
    cls,
    crossings: 1,
    released: false,
  };
  states.set(handle, state);
  return handle;
}

/** What a method returns through a proxy: a promise of its awaited result. */
type Promised<F> = F extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;

declare const remoteOf: unique symbol;

/**
 * What another runspace holds of an instance of an affinity class `T`: its
 * methods, each returning a promise. Fields and accessors are not on the
 * proxy; read and write them with {@link getRemoteProperty} and
 * {@link setRemoteProperty}.
 *
 * @example
 * ```ts
 * // In a script block that was given an affinity object as a using value:
 * const value = await pool.invoke(async (ctx) => {
 *   const proxy = ctx.using.amplifier as unknown as Remote<{ getValue(value: number): number }>;
 *   return await proxy.getValue(3);     // runs at the object's home
 * }, { using: { amplifier } });
 * ```
 */
export type Remote<T> = {
  readonly [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: Promised<T[K]>;
} & { readonly [remoteOf]?: T };

/**
 * Reads a field (or accessor) of an object in another runspace. The read runs
 * at the object's home.
 *
 * @example
 * ```ts
 * const scale = await getRemoteProperty(amplifier, 'scale');
 * ```
 */
export function getRemoteProperty<T, K extends keyof T & string>(proxy: Remote<T>, name: K): Promise<Awaited<T[K]>> {
  return callThrough(proxy, 'getRemoteProperty', 'get', name, []) as Promise<Awaited<T[K]>>;
}

/**
 * Writes a field (or runs a setter) of an object in another runspace, at its
 * home; settles once it is written.
 *
 * @example
 * ```ts
 * await setRemoteProperty(amplifier, 'scale', 2);
 * ```
 */
export function setRemoteProperty<T, K extends keyof T & string>(proxy: Remote<T>, name: K, value: T[K]): Promise<void> {
  return callThrough(proxy, 'setRemoteProperty', 'set', name, [value]) as Promise<void>;
}

/** One operation through `proxy`, as a promise; a value that is no proxy rejects it. */
function callThrough(proxy: unknown, what: string, op: CallOp, name: string, args: readonly unknown[]): Promise<unknown> {
  let state: RemoteState;
  try {
    state = stateOf(proxy, what);
  } catch (error) {
    return Promise.reject(error);
  }
  return state.endpoint.call(state, op, name, args);
}

/**
 * Releases a proxy now instead of when it is garbage collected: its home may
 * forget the object once no other proxy holds it. Calls already made still
 * complete; later calls reject with `ProxyReleasedError`. Releasing twice
 * does nothing.
 *
 * @example
 * ```ts
 * const counter = await pool.invoke(async () => new (await import('./counter.js')).Counter());
 * await counter.increment();
 * releaseRemote(counter);
 * ```
 */
export function releaseRemote(proxy: unknown): void {
  const state = stateOf(proxy, 'releaseRemote');
  state.endpoint.release(state, proxy as object);
}

/**
 * True for a proxy of an object (or class) that lives in another runspace.
 *
 * @example
 * ```ts
 * console.log(isRemote({ plain: true }));   // false: only proxies of affinity objects live elsewhere
 * ```
 */
export function isRemote(value: unknown): boolean {
  return remoteState(value) !== undefined;
}

/**
 * The runspace where the object behind a proxy lives (its worker's thread id;
 * 0 for the main thread), or undefined for a value that is not a proxy.
 *
 * @example
 * ```ts
 * console.log(homeRunspaceId({ plain: true }));   // undefined: not a proxy
 * ```
 */
export function homeRunspaceId(value: unknown): number | undefined {
  return remoteState(value)?.home;
}
