/**
 * What the layers built on the pool (parallel loops, thread jobs) may ask of
 * it beyond the public API: submit prepared tasks and read how they went,
 * through a read-only {@link TaskView}. Nothing here lets them change a task
 * or a runspace.
 *
 * @module
 */

import type { TaskSpec, TaskView } from './task.js';

export interface SubmitOptions {
  readonly signal?: AbortSignal;
}

export interface LoopPool {
  /** Queues a task like `invoke` does and returns its view (not just its promise). */
  submit(spec: TaskSpec, options: SubmitOptions): TaskView;
  /**
   * Sends a task straight to the runspace running `previous`, behind it, or
   * returns undefined (nothing created) when that would jump the line or that
   * runspace is no longer the pool's to schedule on.
   */
  submitBehind(previous: TaskView, spec: TaskSpec, options: SubmitOptions): TaskView | undefined;
  /** Runs a task on a runspace opened for it alone and closed after it. */
  submitFresh(spec: TaskSpec, options: SubmitOptions): TaskView;
  /** Tells every runspace to drop the cached `using` value with this id. */
  forgetUsing(usingId: number): void;
  /** Throws the error `invoke` would when the pool does not accept work. */
  assertAccepting(operation: string): void;
}
