/**
 * `cancel()` of a primitive (async-mutex's): every wait made through that
 * object and still pending stops with `OperationCancelledError`, holding
 * nothing. Waits listen to one signal per object, renewed after each
 * `cancel()` so later waits are unaffected.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';

export class WaitCanceller {
  #controller = WaitCanceller.#fresh();

  static #fresh(): AbortController {
    const controller = new AbortController();
    // Every pending wait of the object listens to it: many at once is normal.
    setMaxListeners(0, controller.signal);
    return controller;
  }

  /** The signal a wait listens to: the object's own, joined with the caller's when there is one. */
  signalFor(callerSignal: AbortSignal | undefined): AbortSignal {
    const own = this.#controller.signal;
    return callerSignal === undefined ? own : AbortSignal.any([callerSignal, own]);
  }

  /** Stops every wait listening now; `reason` becomes their errors' `reason`. */
  cancel(reason: Error): void {
    const controller = this.#controller;
    this.#controller = WaitCanceller.#fresh();
    controller.abort(reason);
  }
}
