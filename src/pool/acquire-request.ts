/**
 * A caller of `pool.acquire()` waiting in line for a runspace of its own. It
 * waits in the same first-in first-out line as queued calls.
 *
 * @module
 */

import type { Runspace } from './runspace.js';

export class AcquireRequest {
  readonly promise: Promise<Runspace>;
  #settled = false;
  #resolve!: (runspace: Runspace) => void;
  #reject!: (error: unknown) => void;
  #cleanups: (() => void)[] = [];

  /** @param cancellable It has a signal or a timeout: it may settle while it waits in line. */
  constructor(readonly cancellable: boolean) {
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  get settled(): boolean {
    return this.#settled;
  }

  onSettle(cleanup: () => void): void {
    this.#cleanups.push(cleanup);
  }

  resolve(runspace: Runspace): void {
    if (this.#finish()) this.#resolve(runspace);
  }

  reject(error: unknown): void {
    if (this.#finish()) this.#reject(error);
  }

  #finish(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
    return true;
  }
}
