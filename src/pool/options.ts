/**
 * The pool's options, their defaults, and their validation. Invalid options
 * throw {@link InvalidArgumentError} before anything is started.
 *
 * @module
 */

import { availableParallelism } from 'node:os';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { InvalidArgumentError, UsingFunctionError, messageOf, shown } from '../errors.js';
import { findUncloneable } from '../protocol/clone-check.js';
import { timeoutMs } from '../util/deadline.js';
import type { RunspaceContext } from '../runspace/context.js';

/** A script run once in every runspace as it opens (PowerShell's startup scripts). */
export type StartupScript = (ctx: RunspaceContext) => unknown;

/** What every runspace of a pool starts with (PowerShell's `InitialSessionState`). */
export interface InitialSessionState {
  /** Variables cloned into every runspace's session. */
  readonly variables?: Readonly<Record<string, unknown>>;
  /**
   * Modules imported into every runspace, in order: URLs, absolute paths, or
   * bare package names. Their namespaces are `ctx.modules`.
   */
  readonly modules?: readonly (string | URL)[];
  /** Script blocks run in every runspace after its modules, with a context of their own. */
  readonly startup?: readonly StartupScript[];
  /**
   * When true, a module or startup script that fails makes the runspace fail to
   * open (and `open()` reject, the pool Broken). When false (the default, as in
   * PowerShell), the failure is reported through the `runspaceOpenError` event
   * and the runspace serves anyway.
   */
  readonly throwOnOpenError?: boolean;
}

/** Options of `new RunspacePool(...)` and `RunspacePool.open(...)`: size, session, worker settings, limits. */
export interface RunspacePoolOptions {
  /** Runspaces kept even when idle. Default 1. */
  readonly minRunspaces?: number;
  /** Runspaces the pool grows to under load. Default `os.availableParallelism()`. */
  readonly maxRunspaces?: number;
  /** Milliseconds an idle runspace above `minRunspaces` lives before it is closed. Default 30 000; `Infinity`: never. */
  readonly idleTimeout?: number;
  readonly initialSessionState?: InitialSessionState;
  /**
   * V8 heap limits of each runspace's thread. A runspace that runs out dies
   * as a broken runspace: its call is rejected with `RunspaceBrokenError`
   * ("out of memory") and the pool opens a replacement.
   */
  readonly resourceLimits?: ResourceLimits;
  /** `process.env` in each runspace. Default: a copy of this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Added to `process.argv` in each runspace, as piscina's and Node's `argv`. */
  readonly argv?: readonly string[];
  /**
   * Node flags of each runspace's thread. Default: this process's flags
   * (less those that only make sense for a main script, such as `-e`). Flags a
   * worker cannot take are refused here, with `InvalidArgumentError`.
   */
  readonly execArgv?: readonly string[];
  /**
   * Calls one runspace may run at once, for async, I/O-bound work: while one
   * call awaits (a fetch, a file, a timer), the runspace starts the next, up
   * to this many. Default 1, the runspace model: one call at a time, so a
   * call's session state is never touched by another mid-call. Above 1,
   * calls that await interleave on the same session variables and module
   * state, as `async` functions on one thread do: write them for that.
   * A parallel loop's chunk still runs alone. A call that ignores its
   * cancellation past `cancelGracePeriod` recycles its runspace, and the
   * calls running beside it fail with `RunspaceBrokenError`.
   * (piscina's `concurrentTasksPerWorker`.)
   *
   * @example
   * ```ts
   * await using pool = await RunspacePool.open({ maxRunspaces: 2, concurrency: 8 });
   * const pages = await Promise.all(urls.map((url) => pool.invoke(async (ctx, u: string) => (await fetch(u)).text(), { args: [url] })));
   * ```
   */
  readonly concurrency?: number;
  /**
   * Milliseconds a cancelled call may keep running after its signal fired
   * before its runspace is recycled. Default 1000; `Infinity`: never recycled.
   */
  readonly cancelGracePeriod?: number;
  /**
   * Microseconds a runspace keeps polling for its next call after its work
   * runs out, before its thread sleeps. Waking a sleeping thread costs tens of
   * microseconds per call; this saves it for callers that await calls one
   * after another. Runspaces poll only while the machine has a core to spare
   * and only while polls find work (decision 0004), so a busy machine or a
   * trickle of calls costs no CPU. Default 100; 0 never polls.
   */
  readonly spinBeforeSleep?: number;
  /**
   * Thread jobs (`startThreadJob`) running at once; the rest wait as
   * `NotStarted`. Default: unlimited, so the pool's `maxRunspaces` is the only
   * bound. (PowerShell's `Start-ThreadJob` defaults to 5.)
   */
  readonly jobThrottleLimit?: number;
  /**
   * Calls (`invoke`) that may wait for a runspace; one more is refused with
   * `PoolQueueFullError`, and the pool emits `drain` once the line empties.
   * A call a free runspace takes at once never counts. Default `Infinity`.
   * Parallel loops bound themselves (`highWaterMark`) and are not refused.
   */
  readonly maxQueue?: number;
  /**
   * What crossing to or from a runspace does with an instance of a class
   * that has no affinity decorator: `'refuse'` (the default) rejects the
   * call with an `UncloneableValueError` naming the class, since structured
   * clone would deliver it without its methods; `'plain'` lets it cross as
   * plain data (its own fields), as structured clone does.
   */
  readonly classInstances?: 'refuse' | 'plain';
}

export interface NormalizedPoolOptions {
  minRunspaces: number;
  maxRunspaces: number;
  /** Undefined: idle runspaces are never trimmed. */
  readonly idleTimeout: number | undefined;
  readonly variables: Readonly<Record<string, unknown>>;
  readonly modules: readonly string[];
  readonly startup: readonly StartupScript[];
  readonly throwOnOpenError: boolean;
  readonly resourceLimits: ResourceLimits | undefined;
  readonly env: Readonly<Record<string, string>> | undefined;
  readonly argv: readonly string[] | undefined;
  readonly execArgv: readonly string[] | undefined;
  /** Undefined: a cancelled call is never recycled, however long it runs on. */
  readonly cancelGracePeriod: number | undefined;
  readonly spinBeforeSleep: number;
  readonly concurrency: number;
  readonly jobThrottleLimit: number;
  readonly maxQueue: number;
  readonly classInstances: 'refuse' | 'plain';
}

/**
 * The most runspaces a pool may have. Each is a thread with its own V8 heap
 * (about 10 MiB idle): far beyond any machine's cores, far below what would
 * exhaust a process. Counts above it are a mistake, refused, not attempted.
 */
export const MAX_RUNSPACES = 1024;

/** Refuses a runspace count above {@link MAX_RUNSPACES}. */
export function assertRunspaceCount(name: string, value: number): void {
  if (value > MAX_RUNSPACES) {
    throw new InvalidArgumentError(name, `at most ${MAX_RUNSPACES} runspaces per pool (each is a thread with its own heap), got ${value}`);
  }
}

export function isValidCount(value: unknown, min: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min;
}

function assertMicroseconds(name: string, value: unknown): asserts value is number | undefined {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(name, `expected microseconds >= 0, got ${shown(value)}`);
  }
}

/** Module specifiers as a runspace can import them: URLs and absolute paths become file URLs. */
export function moduleSpecifier(module: string | URL, base: () => string | null, name: string): string {
  if (module instanceof URL) return module.href;
  if (typeof module !== 'string' || module.length === 0) {
    throw new InvalidArgumentError(name, `expected a module URL, path or package name, got ${shown(module)}`);
  }
  if (module.startsWith('./') || module.startsWith('../')) {
    const baseUrl = base();
    if (baseUrl === null) throw new InvalidArgumentError(name, `relative module '${module}' needs a base: pass new URL('${module}', import.meta.url)`);
    return new URL(module, baseUrl).href;
  }
  if (isAbsolute(module)) return pathToFileURL(module).href;
  return module;
}

/** `callerFile` is asked only for a relative module path, and must be called while the caller is on the stack. */
export function normalizePoolOptions(options: RunspacePoolOptions, callerFile: () => string | null): NormalizedPoolOptions {
  const maxRunspaces = options.maxRunspaces ?? availableParallelism();
  const minRunspaces = options.minRunspaces ?? Math.min(1, maxRunspaces);
  if (!isValidCount(maxRunspaces, 1)) {
    throw new InvalidArgumentError('maxRunspaces', `expected an integer >= 1, got ${shown(maxRunspaces)}`);
  }
  assertRunspaceCount('maxRunspaces', maxRunspaces);
  if (!isValidCount(minRunspaces, 0)) {
    throw new InvalidArgumentError('minRunspaces', `expected an integer >= 0, got ${shown(minRunspaces)}`);
  }
  if (minRunspaces > maxRunspaces) {
    throw new InvalidArgumentError('minRunspaces', `minRunspaces (${minRunspaces}) cannot exceed maxRunspaces (${maxRunspaces})`);
  }
  const idleTimeout = options.idleTimeout === undefined ? 30_000 : timeoutMs('idleTimeout', options.idleTimeout);
  const cancelGracePeriod = options.cancelGracePeriod === undefined ? 1000 : timeoutMs('cancelGracePeriod', options.cancelGracePeriod);
  assertMicroseconds('spinBeforeSleep', options.spinBeforeSleep);
  const concurrency = options.concurrency ?? 1;
  if (!isValidCount(concurrency, 1)) {
    throw new InvalidArgumentError('concurrency', `expected an integer >= 1 (calls one runspace runs at once), got ${shown(concurrency)}`);
  }
  const jobThrottleLimit = options.jobThrottleLimit ?? Infinity;
  if (jobThrottleLimit !== Infinity && !isValidCount(jobThrottleLimit, 1)) {
    throw new InvalidArgumentError('jobThrottleLimit', `expected an integer >= 1, got ${shown(jobThrottleLimit)}`);
  }
  const maxQueue = options.maxQueue ?? Infinity;
  if (maxQueue !== Infinity && !isValidCount(maxQueue, 0)) {
    throw new InvalidArgumentError('maxQueue', `expected an integer >= 0 or Infinity, got ${shown(maxQueue)}`);
  }
  const classInstances = options.classInstances ?? 'refuse';
  if (classInstances !== 'refuse' && classInstances !== 'plain') {
    throw new InvalidArgumentError('classInstances', `expected 'refuse' or 'plain', got ${shown(classInstances)}`);
  }
  const session = options.initialSessionState ?? {};
  const variables = session.variables ?? {};
  for (const [key, value] of Object.entries(variables)) {
    if (typeof value === 'function') throw new UsingFunctionError(`initialSessionState.variables.${key}`);
  }
  const bad = findUncloneable(variables, 'initialSessionState.variables');
  if (bad) throw bad;
  const startup = session.startup ?? [];
  for (const [i, script] of startup.entries()) {
    if (typeof script !== 'function') throw new InvalidArgumentError(`initialSessionState.startup[${i}]`, 'expected a function (ctx) => ...');
  }
  return {
    minRunspaces,
    maxRunspaces,
    idleTimeout,
    variables,
    modules: (session.modules ?? []).map((m, i) => moduleSpecifier(m, callerFile, `initialSessionState.modules[${i}]`)),
    startup,
    throwOnOpenError: session.throwOnOpenError ?? false,
    resourceLimits: options.resourceLimits,
    env: stringRecord('env', options.env),
    argv: stringList('argv', options.argv),
    execArgv: workerFlags(stringList('execArgv', options.execArgv)),
    cancelGracePeriod,
    spinBeforeSleep: options.spinBeforeSleep ?? 100,
    concurrency,
    jobThrottleLimit,
    maxQueue,
    classInstances,
  };
}

function stringRecord(name: string, value: unknown): Readonly<Record<string, string>> | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgumentError(name, `expected an object of strings, got ${shown(value)}`);
  const copy: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') throw new InvalidArgumentError(`${name}.${key}`, `expected a string, got ${shown(entry)}`);
    copy[key] = entry;
  }
  return copy;
}

function stringList(name: string, value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new InvalidArgumentError(name, `expected an array of strings, got ${shown(value)}`);
  value.forEach((entry: unknown, i) => {
    if (typeof entry !== 'string') throw new InvalidArgumentError(`${name}[${i}]`, `expected a string, got ${shown(entry)}`);
  });
  return [...(value as string[])];
}

/**
 * Node checks a worker's flags only when a worker starts: a probe thread,
 * stopped at once, lets a pool refuse bad flags when it is created rather
 * than when its first runspace fails to open.
 */
function workerFlags(flags: readonly string[] | undefined): readonly string[] | undefined {
  if (flags === undefined || flags.length === 0) return flags;
  let probe: Worker;
  try {
    probe = new Worker('', { eval: true, execArgv: [...flags], stdout: true, stderr: true });
  } catch (error) {
    throw new InvalidArgumentError('execArgv', messageOf(error), { cause: error });
  }
  probe.unref();
  void probe.terminate();
  return flags;
}
