/**
 * One end of the affinity channel between the main thread and a runspace.
 *
 * Each end keeps the objects it has sent across (its exports: id → object,
 * with the number of crossings not yet given back) and the proxies it has
 * received (id → weak reference to the proxy). A call names the exported
 * object by id; it runs where the object lives, when that thread's event loop
 * reaches the message, so calls from many runspaces are queued there and a
 * synchronous method is never entered twice at once. Nothing else is
 * serialized: an async method interleaves at its awaits, exactly as it would
 * for calls made at home, and that is what keeps a call that calls back into
 * its caller's runspace from deadlocking.
 *
 * Runspaces only have a link to the main thread. A proxy the main thread holds
 * of one runspace's object, passed on to another runspace, crosses as an
 * export of the main thread; calls then relay through it.
 *
 * @module
 */

import { isMainThread, threadId, type MessagePort } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { AffinityClassError, ProxyReleasedError } from '../errors.js';
import { threadGlobal } from '../util/thread-globals.js';
import { refusedInstance, type ClassInstancePolicy } from './class-instances.js';
import type { AffinityMarker, AffinityMessage, CallOp, WireClassRef } from '../protocol/affinity-messages.js';
import { findUncloneable } from '../protocol/clone-check.js';
import { deserializeError, serializeError } from '../protocol/error-codec.js';
import { decodeArgs, decodeShared, encodeArgs, encodeShared, visitObjectMarkers, type ObjectCodec } from '../protocol/shared-objects.js';
import { classInfo, definedClass, instanceClassInfo, loadClass, shapeOf, staticMethodsOf, type ClassInfo } from './class-registry.js';
import { createRemoteClass, createRemoteInstance, remoteState, type RemoteEndpoint, type RemoteState } from './remote.js';

interface Exported {
  readonly value: object;
  crossings: number;
}

interface PendingCall {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** Every open link of this thread, for {@link affinityStats}, whichever copy of this module opened it (see thread-globals.ts). */
const openLinks = threadGlobal('affinityLinks', () => new Set<AffinityLink>());

export class AffinityLink implements ObjectCodec, RemoteEndpoint {
  readonly #port: MessagePort;
  #nextTarget = 1;
  #nextCall = 1;
  readonly #exports = new Map<number, Exported>();
  readonly #exportIds = new WeakMap<object, number>();
  readonly #remotes = new Map<number, WeakRef<object>>();
  readonly #finalizer = new FinalizationRegistry<RemoteState>((state) => this.#collected(state));
  readonly #pending = new Map<number, PendingCall>();
  #broken: Error | undefined;
  #releaseIds: number[] = [];
  #releaseCounts: number[] = [];
  #releaseQueued = false;

  /**
   * @param peer Thread id of the other end, named in errors.
   * @param classInstances What to do with instances of undecorated classes (see class-instances.ts).
   */
  constructor(port: MessagePort, readonly peer: number, readonly classInstances: ClassInstancePolicy = 'refuse') {
    this.#port = port;
    port.on('message', this.#onMessage);
    // Only calls waiting for a reply keep the process alive.
    port.unref();
    openLinks.add(this);
  }

  /** Objects of this thread that the other end may still call. */
  get exportCount(): number {
    return this.#exports.size;
  }

  get remoteCount(): number {
    return this.#remotes.size;
  }

  // ---- values crossing ------------------------------------------------------

  /**
   * An encoder for the values of one message: besides the encoded values it
   * tells whether they copy classes, so the message can say the receiver may
   * have to import them before decoding.
   */
  encoder(): MessageEncoder {
    return new MessageEncoder(this);
  }

  decode(value: unknown): unknown {
    return decodeShared(value, this);
  }

  /** Decodes each element of a list on its own; the list itself when nothing changed. */
  decodeArgs(args: readonly unknown[]): readonly unknown[] {
    return decodeArgs(args, this);
  }

  /**
   * Imports the modules of classes copied into the encoded values `roots`
   * (each decoded on its own) that this thread has not defined yet; undefined
   * when there are none, the usual case.
   */
  prepare(roots: readonly unknown[]): Promise<void> | undefined {
    const missing = new Map<string, WireClassRef>();
    const visit = (marker: object): void => {
      const m = marker as AffinityMarker;
      if (m.kind === 'copy') {
        if (definedClass(m.cls) === undefined) missing.set(`${m.cls.module}#${m.cls.name}`, m.cls);
        visitObjectMarkers(m.fields, visit);
      } else if (m.kind === 'class' && !m.affinity && definedClass(m.cls) === undefined) {
        missing.set(`${m.cls.module}#${m.cls.name}`, m.cls);
      }
    };
    for (const root of roots) visitObjectMarkers(root, visit);
    if (missing.size === 0) return undefined;
    return Promise.all([...missing.values()].map(loadClass)).then(() => undefined);
  }

  encodeObject(value: object): object | undefined {
    const remote = remoteState(value);
    if (remote !== undefined) return this.#encodeRemote(value, remote);
    if (typeof value === 'function') {
      const info = classInfo(value);
      return info === undefined ? undefined : this.#encodeClass(value, info);
    }
    const info = instanceClassInfo(value);
    if (info === undefined) {
      if (this.classInstances === 'plain') return undefined;
      const refused = refusedInstance(value);
      if (refused !== undefined) throw refused;
      return undefined;
    }
    if (info.kind === 'none') {
      assertLoadable(info);
      const fields: Record<string, unknown> = {};
      for (const key of Object.keys(value)) fields[key] = (value as Record<string, unknown>)[key];
      return { kind: 'copy', cls: { module: info.module, name: info.name }, fields: encodeShared(fields, this) as Record<string, unknown> } satisfies AffinityMarker;
    }
    const shape = shapeOf(value);
    return {
      kind: 'instance',
      target: this.#export(value),
      className: info.name,
      home: threadId,
      methods: shape.methods,
      properties: shape.properties,
    } satisfies AffinityMarker;
  }

  #encodeClass(value: Function, info: ClassInfo): AffinityMarker {
    const cls = { module: info.module, name: info.name };
    if (info.kind === 'none') {
      assertLoadable(info);
      return { kind: 'class', cls, affinity: false, target: undefined, home: threadId, statics: [] };
    }
    return { kind: 'class', cls, affinity: true, target: this.#export(value), home: threadId, statics: staticMethodsOf(value) };
  }

  /** A proxy going back where its object lives is that object again; going elsewhere, it is relayed. */
  #encodeRemote(value: object, remote: RemoteState): AffinityMarker {
    // A released proxy no longer holds its object: home may have forgotten it.
    if (remote.released) throw new ProxyReleasedError(remote.className, remote.home);
    if (remote.endpoint === this) return { kind: 'own', target: remote.target };
    const target = this.#export(value);
    if (remote.cls !== undefined) {
      return { kind: 'class', cls: remote.cls, affinity: true, target, home: remote.home, statics: remote.methods };
    }
    return { kind: 'instance', target, className: remote.className, home: remote.home, methods: remote.methods, properties: [...remote.properties] };
  }

  #export(value: object): number {
    let id = this.#exportIds.get(value);
    if (id === undefined) {
      id = this.#nextTarget++;
      this.#exportIds.set(value, id);
    }
    const exported = this.#exports.get(id);
    if (exported === undefined) this.#exports.set(id, { value, crossings: 1 });
    else exported.crossings++;
    return id;
  }

  decodeObject(body: object): unknown {
    const marker = body as AffinityMarker;
    switch (marker.kind) {
      case 'own': {
        const exported = this.#exports.get(marker.target);
        if (exported === undefined) throw new Error(`object ${marker.target} came back after it was released (internal error)`);
        return exported.value;
      }
      case 'instance':
        return this.#proxyOf(marker.target, () => createRemoteInstance(this, marker));
      case 'copy': {
        const cls = definedClass(marker.cls);
        if (cls === undefined) throw notLoaded(marker.cls);
        const instance = Object.create(cls.prototype as object) as object;
        return Object.assign(instance, decodeShared(marker.fields, this));
      }
      case 'class': {
        const local = definedClass(marker.cls);
        if (local !== undefined) {
          // Defined here: statics bind to this runspace, and the sender's export is not needed.
          if (marker.target !== undefined) this.#queueRelease(marker.target, 1);
          return local;
        }
        if (!marker.affinity || marker.target === undefined) throw notLoaded(marker.cls);
        const target = marker.target;
        return this.#proxyOf(target, () => createRemoteClass(this, {
          target,
          className: marker.cls.name,
          home: marker.home,
          methods: marker.statics,
          properties: [],
          cls: marker.cls,
        }));
      }
    }
  }

  /** The live proxy of `target`, holding one more crossing; else a new one, tracked until released or collected. */
  #proxyOf(target: number, create: () => object): object {
    const live = this.#remotes.get(target)?.deref();
    if (live !== undefined) {
      remoteState(live)!.crossings++;
      return live;
    }
    const proxy = create();
    this.#remotes.set(target, new WeakRef(proxy));
    this.#finalizer.register(proxy, remoteState(proxy)!, proxy);
    return proxy;
  }

  // ---- calls out ------------------------------------------------------------

  call(state: RemoteState, op: CallOp, name: string, args: readonly unknown[]): Promise<unknown> {
    if (this.#broken !== undefined) return Promise.reject(this.#broken);
    if (state.released) return Promise.reject(new ProxyReleasedError(state.className, state.home));
    let encoded: readonly unknown[];
    const encoder = this.encoder();
    try {
      encoded = encoder.encodeArgs(args);
    } catch (error) {
      return Promise.reject(error);
    }
    const call = this.#nextCall++;
    return new Promise((resolve, reject) => {
      const message: AffinityMessage = { type: 'call', call, target: state.target, op, name, args: encoded, loadsClasses: encoder.loadsClasses };
      try {
        this.#port.postMessage(message);
      } catch (error) {
        reject(findUncloneable(args, 'args') ?? error);
        return;
      }
      this.#pending.set(call, { resolve, reject });
      if (this.#pending.size === 1) this.#port.ref();
    });
  }

  release(state: RemoteState, proxy: object): void {
    if (state.released) return;
    this.#finalizer.unregister(proxy);
    if (this.#remotes.get(state.target)?.deref() === proxy) this.#remotes.delete(state.target);
    this.#giveBack(state);
    // Sent now, not batched: a call made right after, on this link, finds it done.
    this.#flushReleases();
  }

  #collected(state: RemoteState): void {
    if (this.#remotes.get(state.target)?.deref() === undefined) this.#remotes.delete(state.target);
    this.#giveBack(state);
  }

  #giveBack(state: RemoteState): void {
    state.released = true;
    if (state.crossings > 0) this.#queueRelease(state.target, state.crossings);
    state.crossings = 0;
  }

  /** Releases are batched: collecting many proxies at once sends one message. */
  #queueRelease(target: number, count: number): void {
    if (this.#broken !== undefined) return;
    this.#releaseIds.push(target);
    this.#releaseCounts.push(count);
    if (this.#releaseQueued) return;
    this.#releaseQueued = true;
    setImmediate(this.#flushReleases).unref();
  }

  #flushReleases = (): void => {
    this.#releaseQueued = false;
    if (this.#broken !== undefined || this.#releaseIds.length === 0) return;
    const message: AffinityMessage = { type: 'release', ids: this.#releaseIds, counts: this.#releaseCounts };
    this.#releaseIds = [];
    this.#releaseCounts = [];
    this.#port.postMessage(message);
  };

  // ---- calls in -------------------------------------------------------------

  #onMessage = (message: AffinityMessage): void => {
    switch (message.type) {
      case 'call':
        this.#serve(message);
        return;
      case 'reply': {
        const pending = this.#pending.get(message.call);
        if (pending === undefined) return;
        this.#pending.delete(message.call);
        if (this.#pending.size === 0) this.#port.unref();
        if (!message.ok) {
          pending.reject(deserializeError(message.error));
          return;
        }
        const loading = message.loadsClasses ? this.prepare([message.value]) : undefined;
        if (loading === undefined) {
          this.#settle(pending, () => this.decode(message.value));
          return;
        }
        loading.then(() => this.#settle(pending, () => this.decode(message.value)), pending.reject);
        return;
      }
      case 'release':
        for (let i = 0; i < message.ids.length; i++) {
          const id = message.ids[i]!;
          const exported = this.#exports.get(id);
          if (exported === undefined) continue;
          exported.crossings -= message.counts[i]!;
          if (exported.crossings <= 0) this.#exports.delete(id);
        }
        return;
    }
  };

  #settle(pending: PendingCall, decode: () => unknown): void {
    try {
      pending.resolve(decode());
    } catch (error) {
      pending.reject(error);
    }
  }

  #serve(message: Extract<AffinityMessage, { type: 'call' }>): void {
    const loading = message.loadsClasses ? this.prepare(message.args) : undefined;
    if (loading !== undefined) {
      loading.then(() => this.#run(message), (error: unknown) => this.#replyError(message.call, error));
      return;
    }
    this.#run(message);
  }

  #run(message: Extract<AffinityMessage, { type: 'call' }>): void {
    let result: unknown;
    try {
      const exported = this.#exports.get(message.target);
      if (exported === undefined) throw new Error(`object ${message.target} was called after it was released (internal error)`);
      result = invoke(exported.value, message.op, message.name, decodeArgs(message.args, this));
    } catch (error) {
      this.#replyError(message.call, error);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as Promise<unknown>).then(
        (value) => this.#reply(message.call, value),
        (error: unknown) => this.#replyError(message.call, error),
      );
      return;
    }
    this.#reply(message.call, result);
  }

  #reply(call: number, value: unknown): void {
    if (this.#broken !== undefined) return;
    const encoder = this.encoder();
    let message: AffinityMessage;
    try {
      const encoded = encoder.encode(value);
      message = { type: 'reply', call, ok: true, value: encoded, loadsClasses: encoder.loadsClasses };
      this.#port.postMessage(message);
    } catch (error) {
      this.#replyError(call, findUncloneable(value, 'the result') ?? error);
    }
  }

  #replyError(call: number, error: unknown): void {
    if (this.#broken !== undefined) return;
    this.#port.postMessage({ type: 'reply', call, ok: false, error: serializeError(error) } satisfies AffinityMessage);
  }

  // ---- end ------------------------------------------------------------------

  /**
   * The other end is gone: every call waiting on it and every later call
   * through its proxies rejects with `error`; exports are forgotten.
   */
  close(error: Error): void {
    if (this.#broken !== undefined) return;
    this.#broken = error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    this.#exports.clear();
    this.#remotes.clear();
    openLinks.delete(this);
    this.#port.close();
  }
}

/** Runs one operation on an object that lives here, or relays it when the object is itself a proxy. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function invoke(value: object, op: CallOp, name: string, args: readonly unknown[]): unknown {
  const relayed = remoteState(value);
  if (relayed !== undefined) return relayed.endpoint.call(relayed, op, name, args);
  const target = value as Record<string, unknown>;
  // What reaches an object's prototype chain is not a property of the object: a caller in another
  // runspace must not rewrite the home object's class (or a class's statics) by name.
  if (PROTOTYPE_KEYS.has(name) && op !== 'call') {
    throw new TypeError(`'${name}' of ${describe(value)} cannot be ${op === 'set' ? 'set' : 'read'} through a proxy: it is not a property of the object but of its prototype chain.`);
  }
  switch (op) {
    case 'call': {
      const method = target[name];
      if (typeof method !== 'function') {
        throw new TypeError(`${describe(value)}.${name} is not a method (found ${method === undefined ? 'nothing' : typeof method}).`);
      }
      return Reflect.apply(method as Function, value, args);
    }
    case 'get':
      return target[name];
    case 'set':
      target[name] = args[0];
      return undefined;
  }
}

function describe(value: object): string {
  return typeof value === 'function' ? (value as Function).name : ((value as { constructor?: Function }).constructor?.name ?? 'object');
}

function notLoaded(cls: WireClassRef): AffinityClassError {
  return new AffinityClassError(cls.name, `${cls.name} from ${cls.module} is not defined in runspace ${threadId} (internal error: it should have been imported first).`);
}

let entryScript: string | null | undefined;

/**
 * A copied class is imported by the runspaces that receive it. Importing the
 * entry script would run the whole program again in each of them.
 */
function assertLoadable(info: ClassInfo): void {
  if (!isMainThread) return;
  entryScript ??= process.argv[1] ? pathToFileURL(process.argv[1]).href : null;
  if (info.module === entryScript) {
    throw new AffinityClassError(
      info.name,
      `${info.name} is defined in the entry script (${info.module}); runspaces import a copied class's module, which would run your program again in each of them. Move ${info.name} to a module of its own.`,
    );
  }
}

/** How many objects this thread has lent to other runspaces, and how many proxies it holds. */
export interface AffinityStats {
  /** Objects living here that other runspaces still hold proxies of. */
  readonly exported: number;
  /** Proxies held here of objects living elsewhere (not yet collected or released). */
  readonly remotes: number;
}

/**
 * Counts of the calling thread's affinity objects: a way to check that
 * proxies are released (or collected) and objects at home freed.
 *
 * @example
 * ```ts
 * releaseRemote(counter);
 * console.log(affinityStats()); // { exported: 0, remotes: 0 } once released everywhere
 * ```
 */
export function affinityStats(): AffinityStats {
  let exported = 0;
  let remotes = 0;
  for (const link of openLinks) {
    exported += link.exportCount;
    remotes += link.remoteCount;
  }
  return { exported, remotes };
}

/**
 * Encodes the values of one message through a link and remembers whether any
 * of them copies a class (a `@NoRunspaceAffinity()` instance or class), which
 * the receiver may have to import before it can decode them. A copy's own
 * fields are encoded by the link itself: the copy already set the flag.
 */
export class MessageEncoder implements ObjectCodec {
  readonly #link: AffinityLink;
  #loadsClasses = false;

  constructor(link: AffinityLink) {
    this.#link = link;
  }

  get peer(): number {
    return this.#link.peer;
  }

  get loadsClasses(): boolean {
    return this.#loadsClasses;
  }

  encode(value: unknown): unknown {
    return encodeShared(value, this);
  }

  /** Encodes each element of a list on its own (arguments, a loop's items); the list itself when nothing changed. */
  encodeArgs(args: readonly unknown[]): readonly unknown[] {
    return encodeArgs(args, this);
  }

  encodeObject(value: object): object | undefined {
    const marker = this.#link.encodeObject(value) as AffinityMarker | undefined;
    if (marker !== undefined && (marker.kind === 'copy' || (marker.kind === 'class' && !marker.affinity))) this.#loadsClasses = true;
    return marker;
  }

  decodeObject(marker: object): unknown {
    return this.#link.decodeObject(marker);
  }
}
