/**
 * The two ways a class decides where its methods run, as decorators and as
 * plain functions for JavaScript without decorators.
 *
 * @module
 */

import { callerModuleUrl, registerClass, type AffinityKind } from './class-registry.js';

/** Any class. `never[]` parameters accept every constructor signature. */
export type AnyClass = abstract new (...args: never[]) => unknown;

/** Options of the affinity decorators and `runspaceAffinity`: where the class is defined, when the stack cannot tell. */
export interface AffinityOptions {
  /**
   * URL of the module that defines the class, when it cannot be read from
   * the stack (a bundler that moved the class, for instance). Defaults to
   * the module that applies the decorator.
   */
  readonly module?: string;
}

/** A class decorator usable with TypeScript's standard decorators and with `experimentalDecorators`. */
export type AffinityDecorator = <C extends AnyClass>(value: C, context?: ClassDecoratorContext<C>) => C;

function decorator(kind: AffinityKind, options: AffinityOptions | undefined, module: string | undefined): AffinityDecorator {
  return (value) => {
    registerClass(value, kind, options?.module ?? module);
    return value;
  };
}

/**
 * Binds a class to the runspace where each instance is created, as a
 * PowerShell class is bound to the session state that defined it (the
 * default there). The instance stays at home: another runspace that receives
 * it (through `using`, arguments or return values) gets a proxy whose methods
 * run at home, against the home runspace's session, and return promises.
 * Calls from many runspaces are queued at home, so a synchronous method is
 * never entered by two of them at once, and the home session is never
 * touched from another thread.
 *
 * Static methods run in the runspace that calls them when the class is
 * defined there (its module was imported), else in the runspace the class
 * handle came from.
 *
 * Define the class at the top level of a module that runspaces can import.
 *
 * @example
 * ```ts
 * import { RunspaceAffinity, parallel, sessionState, type Remote } from 'runspaces';
 *
 * @RunspaceAffinity()
 * export class Amplifier {
 *   constructor(public scale = 1) {}
 *   getValue(value: number): number {
 *     sessionState().set('calls', (sessionState().get<number>('calls') ?? 0) + 1);
 *     return value * this.scale;
 *   }
 * }
 *
 * const amplifier = new Amplifier(1.01);
 * const values = await parallel([1, 2, 3, 4], async (item, ctx) => (ctx.using.amplifier as unknown as Remote<Amplifier>).getValue(item), {
 *   using: { amplifier },
 * }).toArray();
 * ```
 */
export function RunspaceAffinity(options?: AffinityOptions): AffinityDecorator {
  return decorator('affinity', options, options?.module ?? callerModuleUrl());
}

/**
 * Frees a class from any runspace, as PowerShell's `[NoRunspaceAffinity()]`:
 * its methods run in whichever runspace calls them, against that runspace's
 * session. An instance passed to another runspace is copied there (its own
 * enumerable fields; no constructor runs) and arrives as a real instance of
 * its class, so its methods run in parallel, at the cost of a local call.
 * `#private` fields are not copied.
 *
 * Define the class at the top level of a module that runspaces can import
 * without side effects (not the entry script).
 *
 * @example
 * ```ts
 * import { NoRunspaceAffinity, parallel } from 'runspaces';
 *
 * @NoRunspaceAffinity()
 * export class Scaler {
 *   constructor(public factor = 2) {}
 *   apply(value: number): number { return value * this.factor; }
 * }
 *
 * const scaled = await parallel([1, 2, 3], (item, ctx) => ctx.using.scaler.apply(item), {
 *   using: { scaler: new Scaler(3) },
 * }).toArray();
 * ```
 */
export function NoRunspaceAffinity(options?: AffinityOptions): AffinityDecorator {
  return decorator('none', options, options?.module ?? callerModuleUrl());
}

/**
 * The function form of {@link RunspaceAffinity}, for JavaScript without
 * decorators. Call it at the top level of the module that defines the class.
 *
 * @example
 * ```js
 * export class Amplifier { getValue(v) { return v * 2; } }
 * runspaceAffinity(Amplifier);
 * ```
 */
export function runspaceAffinity<C extends AnyClass>(value: C, options?: AffinityOptions): C {
  registerClass(value, 'affinity', options?.module ?? callerModuleUrl());
  return value;
}

/**
 * The function form of {@link NoRunspaceAffinity}, for JavaScript without
 * decorators. Call it at the top level of the module that defines the class.
 *
 * @example
 * ```js
 * export class Scaler { constructor(factor) { this.factor = factor; } apply(v) { return v * this.factor; } }
 * noRunspaceAffinity(Scaler);
 * ```
 */
export function noRunspaceAffinity<C extends AnyClass>(value: C, options?: AffinityOptions): C {
  registerClass(value, 'none', options?.module ?? callerModuleUrl());
  return value;
}
