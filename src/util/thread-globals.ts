/**
 * Every piece of per-thread state that must be one object in a thread however
 * many copies of this library's modules that thread loaded. This file is the
 * list; nothing else in the library keeps state on `globalThis` (function-location.ts
 * parks a function there for one synchronous inspector call, and removes it).
 *
 * Why copies exist: a runspace runs the worker entry as one bundled file
 * (decision 0007). When code in that runspace imports `runspaces`, the
 * package's own modules load beside the bundle: a second copy of every
 * bundled module, with its own module-level variables. `errors.js` and
 * `sync/*` are kept out of the bundle (one copy), but the state below lives
 * in bundled modules, so it is kept here, under registered symbols, where
 * both copies find the same object.
 *
 * @module
 */

const SLOTS = {
  /** The runspace's session (`ctx.session` and `sessionState()` must be one object). */
  session: Symbol.for('runspaces.session'),
  /** Classes with affinity decorators, by module and name (decorated in one copy, looked up in the other). */
  affinityClasses: Symbol.for('runspaces.affinity.classes'),
  /** Proxies of objects living elsewhere (made by the bundle, read by the package's `isRemote`). */
  affinityRemotes: Symbol.for('runspaces.affinity.remotes'),
  /** Open affinity links, for `affinityStats()`. */
  affinityLinks: Symbol.for('runspaces.affinity.links'),
  /** Script-block sources and their ids (one id space per thread, however many copies of the pool load). */
  scriptRegistry: Symbol.for('runspaces.scriptRegistry'),
  /** Where the running call's context is (`currentContext()`, called from a user's module). */
  currentContext: Symbol.for('runspaces.currentContext'),
  /** The process's arena of named synchronization objects (adopted by each runspace at start). */
  syncArena: Symbol.for('runspaces.sync.arena'),
} as const;

export type ThreadGlobal = keyof typeof SLOTS;

type Slots = Record<symbol, unknown>;

/** The thread's object in `slot`, created by `create` the first time any copy asks. */
export function threadGlobal<T>(slot: ThreadGlobal, create: () => T): T {
  const globals = globalThis as unknown as Slots;
  const key = SLOTS[slot];
  if (!(key in globals)) globals[key] = create();
  return globals[key] as T;
}

/** Replaces the thread's object in `slot` (a runspace installing what its pool handed it). */
export function setThreadGlobal<T>(slot: ThreadGlobal, value: T): void {
  (globalThis as unknown as Slots)[SLOTS[slot]] = value;
}
