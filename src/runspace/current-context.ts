/**
 * The context of the call running in this runspace, for code that is not
 * handed one: a module function called with `context: false` (an existing
 * piscina worker's export), or a helper deep in a module. The task loop
 * registers where to find it when the runspace starts; the slot is a
 * per-thread global (see util/thread-globals.ts), since the package a user
 * imports and the worker's bundle are two copies of this module.
 *
 * @module
 */

import { InvalidOperationError } from '../errors.js';
import { setThreadGlobal, threadGlobal } from '../util/thread-globals.js';
import type { RunspaceContext } from './context.js';

type ContextSource = () => RunspaceContext<unknown> | undefined;

/** @internal The task loop says where the running call's context is. */
export function installContextSource(source: ContextSource): void {
  setThreadGlobal('currentContext', source);
}

/**
 * The context (`ctx`) of the call running in this runspace: its `using`
 * values, session, signal and stream writers. Throws
 * `InvalidOperationError` outside a call (on the main thread, or in a
 * runspace between calls).
 *
 * @example
 * ```ts
 * // tasks.js, run with { module: new URL('./tasks.js', import.meta.url), context: false }
 * import { currentContext } from 'runspaces';
 * export default function resize(file: string): string {
 *   const ctx = currentContext<{ width: number }>();
 *   ctx.writeVerbose(`resizing ${file}`);
 *   return `${file}@${ctx.using.width}`;
 * }
 * ```
 */
export function currentContext<U = Readonly<Record<string, unknown>>>(): RunspaceContext<U> {
  const context = threadGlobal<ContextSource | undefined>('currentContext', () => undefined)?.();
  if (context === undefined) throw new InvalidOperationError('currentContext() is only available inside a call running in a runspace.');
  return context as RunspaceContext<U>;
}
