/**
 * What a caller can ask a runspace to run, and turning that request into a
 * {@link TaskSpec}: script blocks, module functions, their arguments and
 * `using` values, validated before anything is queued.
 *
 * @module
 */

import { classInfo } from '../affinity/class-registry.js';
import { isRemote } from '../affinity/remote.js';
import { InvalidArgumentError, messageOf, shown, UncloneableValueError, UsingFunctionError } from '../errors.js';
import type { FunctionRef } from '../protocol/messages.js';
import type { StreamRecord } from '../protocol/stream-records.js';
import type { RunspaceContext } from '../runspace/context.js';
import type { TransferListItem } from 'node:worker_threads';
import { CostEstimate } from './batching.js';
import { moduleSpecifier } from './options.js';
import { timeoutMs } from '../util/deadline.js';
import { abortSignalOption, baseUrlOption, readOptions } from '../util/options.js';
import { callerFileUrl, scriptFor } from './script-registry.js';
import type { TaskSpec } from './task.js';

/**
 * A script block: a function shipped to a runspace by its source and compiled
 * there. It sees only its parameters (no closure crosses, as in PowerShell):
 * `ctx` first, then the call's `args`.
 */
export type ScriptBlock<A extends readonly unknown[] = unknown[], R = unknown, U = Readonly<Record<string, unknown>>> =
  (ctx: RunspaceContext<U>, ...args: A) => R;

/** An exported function of a real module, run with the same `(ctx, ...args)`. */
/**
 * An exported function of a real module, with its imports and closures. It
 * is called as a script block of the same API would be: `fn(ctx, ...args)`
 * by `invoke` and thread jobs, `fn(item, ctx)` by parallel loops. With
 * `context: false` it gets no `ctx`: `fn(...args)` and `fn(item)`, so a
 * function written for piscina (`export default (task) => ...`) runs
 * unchanged; `currentContext()` reaches the context from inside it.
 *
 * @example
 * ```ts
 * await pool.invoke({ module: new URL('./tasks.js', import.meta.url), export: 'resize' }, { args: ['a.png'] });
 * const squares = await pool.forEachParallel([1, 2, 3], { module: new URL('./piscina-worker.js', import.meta.url), context: false }).toArray();
 * ```
 */
export interface ModuleFunction {
  /** Module URL, absolute path, path relative to the calling file, or package name. */
  readonly module: string | URL;
  /** Export name. Default `'default'`. */
  readonly export?: string;
  /** `false`: call it without `ctx`. Default `true`. */
  readonly context?: boolean;
}

/** Options of `pool.invoke` and `runspace.invoke`: arguments, `using` values, limits, cancellation, streams. */
export interface InvokeOptions<A extends readonly unknown[] = unknown[], U = Readonly<Record<string, unknown>>> {
  /** Arguments after `ctx`; cloned into the runspace. */
  readonly args?: A;
  /** Values the script block reads as `ctx.using`: evaluated once here, cloned; functions are refused. */
  readonly using?: U;
  /** Cancels the call: queued, it never starts; running, `ctx.signal` fires. */
  readonly signal?: AbortSignal;
  /** Milliseconds from this call until it is cancelled with a `TimeoutError`. */
  readonly timeout?: number;
  /** Objects moved, not copied, to the runspace (ArrayBuffers, MessagePorts). */
  readonly transfer?: readonly TransferListItem[];
  /**
   * File that relative `import()` in the script block resolves against.
   * Default: the file that called `invoke`.
   */
  readonly baseUrl?: string | URL;
  /** Receives the call's stream records (warning, verbose, ...); without it they go to the pool's `record` event. */
  readonly onRecord?: (record: StreamRecord) => void;
}

/**
 * The options argument of `invoke` for a script block declaring parameters
 * `A` after `ctx`: optional when it declares none (or only optional ones),
 * required with `args` otherwise, so a forgotten `args` is a type error
 * rather than a call that runs with `undefined` arguments.
 */
export type InvokeOptionsArgument<A extends readonly unknown[], U> = [] extends A
  ? [options?: InvokeOptions<A, U>]
  : [options: InvokeOptions<A, U> & { readonly args: A }];

/** Options only the library's own layers pass (thread jobs). */
export interface InternalInvokeOptions extends InvokeOptions<readonly unknown[], unknown> {
  /** Input objects the function reads as `ctx.input`. */
  readonly input?: readonly unknown[];
}

/**
 * The one check of a `using` option, for calls, loops and jobs alike: an
 * object of named values, without functions (as PowerShell refuses script
 * blocks in `$using:`). Classes with runspace affinity, their handles and
 * proxies are the exception: they cross by module and name.
 */
export function validateUsing(using: unknown): Readonly<Record<string, unknown>> | undefined {
  if (using === undefined) return undefined;
  if (using === null || typeof using !== 'object' || Array.isArray(using)) {
    throw new InvalidArgumentError('using', 'expected an object of named values');
  }
  let key = '';
  try {
    for (key of Object.keys(using)) {
      const value = (using as Record<string, unknown>)[key];
      if (typeof value === 'function' && classInfo(value) === undefined && !isRemote(value)) throw new UsingFunctionError(`using.${key}`);
    }
  } catch (error) {
    if (error instanceof UsingFunctionError) throw error;
    // A getter or Proxy trap of the caller's value threw.
    throw new UncloneableValueError(key === '' ? 'using' : `using.${key}`, `it could not be inspected (${messageOf(error)})`, { cause: error });
  }
  return using as Readonly<Record<string, unknown>>;
}

const moduleCosts = new Map<string, CostEstimate>();
const INVOKE_OPTIONS = ['args', 'using', 'signal', 'timeout', 'transfer', 'baseUrl', 'onRecord', 'input'] as const;

/**
 * A caller's call options, read once into a plain object: what builds the
 * task and what cancels it then see the same values, and a getter runs once.
 */
export function readInvokeOptions(given: unknown): InternalInvokeOptions {
  if (given === null || typeof given !== 'object') throw new InvalidArgumentError('options', 'expected an options object');
  return readOptions(given, INVOKE_OPTIONS) as InternalInvokeOptions;
}

/** The task for `target`, from options already read (see {@link readInvokeOptions}). */
export function buildTaskSpec(target: Function | ModuleFunction, options: InternalInvokeOptions): TaskSpec {
  const args = options.args ?? [];
  if (!Array.isArray(args)) throw new InvalidArgumentError('args', 'expected an array of arguments');
  const using = validateUsing(options.using);
  timeoutMs('timeout', options.timeout);
  abortSignalOption(options.signal);
  if (options.onRecord !== undefined && typeof options.onRecord !== 'function') {
    throw new InvalidArgumentError('onRecord', 'expected a function');
  }
  // Node's postMessage takes only an iterable here, and says so with an untyped TypeError.
  if (options.transfer !== undefined && !Array.isArray(options.transfer)) {
    throw new InvalidArgumentError('transfer', `expected an array of transferable objects (ArrayBuffer, MessagePort...), got ${shown(options.transfer)}`);
  }
  let fn: FunctionRef;
  let definition;
  let cost: CostEstimate;
  if (typeof target === 'function') {
    const base = baseUrlOption(options.baseUrl);
    const script = scriptFor(target, base);
    fn = { kind: 'script', id: script.id };
    definition = script.definition;
    cost = script.cost;
  } else if (target !== null && typeof target === 'object' && 'module' in target) {
    const { module: specifier, export: exportName = 'default', context = true } = readOptions(target, ['module', 'export', 'context'], 'target') as ModuleFunction;
    if (typeof exportName !== 'string') throw new InvalidArgumentError('export', 'expected an export name');
    if (typeof context !== 'boolean') throw new InvalidArgumentError('context', 'expected true or false');
    const module = moduleSpecifier(specifier, callerFileUrl, 'module');
    fn = context ? { kind: 'module', module, export: exportName } : { kind: 'module', module, export: exportName, withContext: false };
    const key = `${module}#${exportName}`;
    cost = moduleCosts.get(key) ?? new CostEstimate();
    moduleCosts.set(key, cost);
  } else {
    throw new InvalidArgumentError('target', 'expected a function (ctx, ...args) => ... or { module, export }');
  }
  const spec: TaskSpec = { fn, definition, args, using, transfer: options.transfer, cost, onRecord: options.onRecord };
  return options.input === undefined ? spec : { ...spec, input: options.input };
}

const variableCost = new CostEstimate();

export function variableSpec(fn: FunctionRef): TaskSpec {
  return { fn, definition: undefined, args: [], using: undefined, transfer: undefined, cost: variableCost, onRecord: undefined };
}
