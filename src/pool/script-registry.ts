/**
 * Script blocks as the pool knows them: each distinct source gets an id once,
 * and a runspace is sent the source of an id the first time only, then just
 * the id. Inline arrows (`pool.invoke((ctx) => ..., ...)` in a loop) are new
 * function objects with one source, so entries are keyed by source, with a
 * WeakMap from function object in front to skip re-reading the source.
 *
 * Both caches are bounded, so code that generates script blocks (templated
 * sources, `new Function`) runs in flat memory: the last
 * {@link SCRIPT_SOURCES_KEPT} distinct sources are kept here, and each
 * runspace keeps the compiled form of the last {@link SCRIPTS_PER_RUNSPACE}
 * it was sent (its host tells it which to drop). A source seen again after
 * it was dropped gets a new id and is sent once more; code that reuses its
 * functions never notices.
 *
 * @module
 */

import { fileURLToPath, pathToFileURL } from 'node:url';
import { ScriptBlockError } from '../errors.js';
import type { ScriptDefinition } from '../protocol/messages.js';
import { CostEstimate } from './batching.js';
import { routeDynamicImports } from './dynamic-imports.js';
import { closureError, freeVariables } from './closure-check.js';
import { functionLocation, type FunctionLocation } from './function-location.js';
import { SCRIPT_POSITION } from '../protocol/script-source.js';
import { LruMap } from '../util/lru.js';
import { threadGlobal } from '../util/thread-globals.js';

export interface ScriptInfo {
  readonly id: number;
  readonly definition: ScriptDefinition;
  readonly cost: CostEstimate;
}

interface Entry {
  readonly source: string;
  /** Names the source uses from outside itself (see closure-check.ts): a non-empty list is refused. */
  readonly free: readonly string[];
  /** A function with this source, to find where it was written (for errors and stack frames). */
  readonly sample: WeakRef<Function>;
  /** Where it was written, looked up on first need. */
  location?: FunctionLocation | null;
  readonly usesImport: boolean;
  /** The file that defined the function, looked up on first need. */
  definedIn?: string | null;
  /** One id per base URL the function was invoked with. */
  readonly byBase: Map<string | null, ScriptInfo>;
}

const LIBRARY_DIR = fileURLToPath(new URL('../', import.meta.url));

/** Distinct script-block sources the main thread keeps. */
export const SCRIPT_SOURCES_KEPT = 2_000;
/** Compiled script blocks each runspace keeps. */
export const SCRIPTS_PER_RUNSPACE = 1_000;

const LIBRARY_FRAME = /^\s+at .*[\\/]runspace[\\/]worker\.bundle\.js:\d+:\d+\)?$/;

interface Registry {
  nextId: number;
  readonly byFunction: WeakMap<Function, Entry>;
  readonly bySource: LruMap<string, Entry>;
  /** Script ids of recent sources, to map the stack frames of their errors. */
  readonly byId: LruMap<number, Entry>;
}

/** One registry per thread, whichever copy of this module asks (see thread-globals.ts). */
const registry = threadGlobal<Registry>('scriptRegistry', () => ({
  nextId: 1,
  byFunction: new WeakMap(),
  bySource: new LruMap(SCRIPT_SOURCES_KEPT),
  byId: new LruMap(SCRIPT_SOURCES_KEPT),
}));
const { byFunction, bySource, byId } = registry;

/** Distinct sources cached (for tests and diagnostics). */
export function cachedSourceCount(): number {
  return bySource.size;
}

/** Refuses a source that cannot run in a runspace; checked once per distinct source. */
function checkSource(fn: Function, source: string): void {
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
    throw new ScriptBlockError(
      `${fn.name || 'The function'} is native or bound, so it has no source to run in a runspace. Pass an arrow or function expression that takes (ctx, ...args).`,
    );
  }
  if (/^class[\s{]/.test(source)) {
    throw new ScriptBlockError('A class is not a script block. Pass a function that takes (ctx, ...args).');
  }
}

/**
 * The script block for `fn`. Its base URL (explicit, else the file that
 * defined it, else the file that called the pool) matters only when the
 * source uses `import()`, so it is looked up only then.
 */
export function scriptFor(fn: Function, explicitBase: string | undefined, kind: 'script block' | 'startup script' = 'script block'): ScriptInfo {
  let entry = byFunction.get(fn);
  if (entry === undefined) {
    const source = Function.prototype.toString.call(fn);
    entry = bySource.get(source);
    if (entry === undefined) {
      checkSource(fn, source);
      const routed = routeDynamicImports(source);
      entry = { source: routed.source, free: freeVariables(source), sample: new WeakRef(fn), usesImport: routed.importsDynamically, byBase: new Map() };
      bySource.set(source, entry);
      // Only the first function with a source is remembered by identity: an
      // arrow written inside the call (a new function each time) would
      // otherwise add a WeakMap entry per call, for the collector to clear.
      byFunction.set(fn, entry);
    }
  }
  // Located from this very function: one source may be written in several files.
  if (entry.free.length > 0) throw closureError(entry.free, functionLocation(fn), kind);
  let base: string | null = null;
  if (entry.usesImport) {
    if (explicitBase !== undefined) base = explicitBase;
    else {
      if (entry.definedIn === undefined) entry.definedIn = locationOf(entry, fn)?.url ?? null;
      base = entry.definedIn ?? callerFileUrl();
    }
  }
  let info = entry.byBase.get(base);
  if (info === undefined) {
    const id = registry.nextId++;
    info = { id, definition: { id, source: entry.source, base }, cost: new CostEstimate() };
    entry.byBase.set(base, info);
    byId.set(id, entry);
  }
  return info;
}

/** URL of the first file on the stack outside this library: the user's code that called us. */
export function callerFileUrl(): string | null {
  const original = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = 30;
    Error.prepareStackTrace = (_error, frames) => frames;
    const frames = new Error().stack as unknown as NodeJS.CallSite[];
    for (const frame of frames) {
      const file = frame.getFileName();
      if (!file || file.startsWith('node:')) continue;
      const path = file.startsWith('file:') ? fileURLToPath(file) : file;
      if (path.startsWith(LIBRARY_DIR)) continue;
      return file.startsWith('file:') ? file : pathToFileURL(path).href;
    }
    return null;
  } finally {
    Error.prepareStackTrace = original;
    Error.stackTraceLimit = limit;
  }
}

function locationOf(entry: Entry, fn?: Function): FunctionLocation | null {
  if (entry.location !== undefined) return entry.location;
  const sample = fn ?? entry.sample.deref();
  if (sample === undefined) return null;
  return (entry.location = functionLocation(sample));
}

/**
 * Maps the stack frames of an error raised inside script blocks back to the
 * files where they were written (the runspace compiled them under names that
 * say which script block; see protocol/script-source.ts), through the
 * error's causes too. Frames of a script block whose location cannot be
 * told are left as they are.
 */
export function mapScriptStacks(error: unknown): void {
  for (let at = error, depth = 0; at instanceof Error && depth < 8; at = at.cause, depth++) {
    const { stack } = at;
    if (typeof stack !== 'string' || !stack.includes('runspaces-script-')) continue;
    // The runspace's own frames below the script block's say nothing about the user's code.
    const mapped = stack.split('\n').filter((frame) => !LIBRARY_FRAME.test(frame)).join('\n').replace(SCRIPT_POSITION, (found, id: string, prefix: string, line: string, column: string) => {
      const entry = byId.get(Number(id));
      const location = entry === undefined ? null : locationOf(entry);
      if (location === null) return found;
      const sourceLine = Number(line);
      const sourceColumn = sourceLine === 1 ? location.column + Number(column) - 1 - Number(prefix) : Number(column);
      return `${location.url}:${location.line + sourceLine - 1}:${sourceColumn}`;
    });
    Object.defineProperty(at, 'stack', { value: mapped, writable: true, configurable: true });
  }
}
