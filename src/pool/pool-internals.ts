/**
 * The pool's internal surface for the layers built on it (parallel loops,
 * thread jobs): submitting prepared tasks and managing cached `using` values.
 * Reached through a symbol that the package does not export, so it is not
 * part of the public API.
 *
 * @module
 */

import type { RunspaceHost } from './runspace-host.js';
import type { Task, TaskSpec } from './task.js';

export const poolInternals = Symbol('runspaces.poolInternals');

export interface SubmitOptions {
  readonly signal?: AbortSignal;
}

export interface PoolInternals {
  /** Queues a task like `invoke` does and returns it (not just its promise). */
  submit(spec: TaskSpec, options: SubmitOptions): Task;
  /**
   * Sends a task straight to `host`, behind the caller's earlier task there,
   * or returns undefined (nothing created) when that would jump the line.
   */
  submitBehind(host: RunspaceHost, spec: TaskSpec, options: SubmitOptions): Task | undefined;
  /** Runs a task on a runspace opened for it alone and closed after it. */
  submitFresh(spec: TaskSpec, options: SubmitOptions): Task;
  /** Tells every runspace to drop the cached `using` value with this id. */
  forgetUsing(usingId: number): void;
  /** Throws the error `invoke` would when the pool does not accept work. */
  assertAccepting(operation: string): void;
}
