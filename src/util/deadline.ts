/**
 * The one rule for every timeout in the library, written once.
 *
 * | value                         | meaning                                   |
 * |-------------------------------|-------------------------------------------|
 * | `undefined` or `Infinity`     | no limit                                  |
 * | `0`                           | already due: try once, never wait         |
 * | a finite number `> 0`         | that many milliseconds, however large     |
 * | anything else (`NaN`, `-1`, `'5'`) | `InvalidArgumentError`               |
 *
 * `-1` (.NET's `Timeout.Infinite`) is refused, not read as "forever": in
 * JavaScript a negative timeout is far more often a deadline computed too
 * late than a wish to wait forever (decision 0022).
 *
 * Node's `setTimeout` silently turns a delay of 2^31 ms or more (about 24.8
 * days) into 1 ms; {@link startTimer} re-arms instead, so a very long timeout
 * fires when it is due, never early.
 *
 * Every option named `timeout`, `idleTimeout`, `cancelGracePeriod` and the
 * sync layer's waits go through {@link timeoutMs}; every timer that enforces
 * one goes through {@link startTimer} or {@link onCancel}.
 *
 * @module
 */

import { InvalidArgumentError, shown } from '../errors.js';

/** The longest delay `setTimeout` honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Validates a timeout option: milliseconds, or `undefined` for no limit
 * (`Infinity` also means no limit and comes back as `undefined`).
 */
export function timeoutMs(name: string, value: unknown): number | undefined {
  if (value === undefined || value === Infinity) return undefined;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new InvalidArgumentError(name, `expected milliseconds >= 0, or Infinity for no limit, got ${shown(value)}`);
  }
  return value;
}

/** The `performance.now()` time a timeout ends at; Infinity when there is no limit. */
export function deadlineOf(timeout: number | undefined): number {
  return timeout === undefined || timeout === Infinity || timeout < 0 ? Infinity : performance.now() + timeout;
}

/** Milliseconds left until `deadline` (Infinity stays Infinity). */
export function remaining(deadline: number): number {
  return deadline === Infinity ? Infinity : Math.max(0, deadline - performance.now());
}

/** A running timer; `cancel()` is idempotent. */
export interface Timer {
  cancel(): void;
  /** Lets the process exit while only this timer is pending. */
  unref(): Timer;
}

const NEVER: Timer = { cancel() {}, unref: () => NEVER };

/**
 * Calls `fire` once `ms` milliseconds have passed (`undefined`: never).
 * Delays past `setTimeout`'s range are honoured by re-arming.
 */
export function startTimer(ms: number | undefined, fire: () => void): Timer {
  if (ms === undefined || ms === Infinity) return NEVER;
  const deadline = performance.now() + ms;
  let handle: NodeJS.Timeout;
  let unref = false;
  const arm = (delay: number): void => {
    handle = setTimeout(() => {
      const left = deadline - performance.now();
      if (left > 1) arm(left);
      else fire();
    }, Math.min(Math.max(0, delay), MAX_TIMER_MS));
    if (unref) handle.unref();
  };
  arm(ms);
  const timer: Timer = {
    cancel: () => clearTimeout(handle),
    unref: () => {
      unref = true;
      handle.unref();
      return timer;
    },
  };
  return timer;
}

/** Why a wait or call was cancelled. */
export type CancelCause = { readonly kind: 'abort'; readonly reason: unknown } | { readonly kind: 'timeout'; readonly ms: number };

/**
 * The signal-and-timeout wiring every cancellable operation needs: calls
 * `cancel` once, on the first of `signal` aborting or `timeout` ms passing,
 * and returns a disposer that detaches both. An already aborted signal calls
 * `cancel` before returning (the disposer is then a no-op).
 */
export function onCancel(signal: AbortSignal | undefined, timeout: number | undefined, cancel: (cause: CancelCause) => void): () => void {
  if (signal?.aborted) {
    cancel({ kind: 'abort', reason: signal.reason });
    return () => {};
  }
  let done = false;
  let timer: Timer | undefined;
  const dispose = (): void => {
    if (done) return;
    done = true;
    timer?.cancel();
    signal?.removeEventListener('abort', onAbort);
  };
  const onAbort = (): void => {
    if (done) return;
    dispose();
    cancel({ kind: 'abort', reason: signal!.reason });
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  if (timeout !== undefined && timeout !== Infinity) {
    timer = startTimer(timeout, () => {
      if (done) return;
      dispose();
      cancel({ kind: 'timeout', ms: timeout });
    });
  }
  return dispose;
}
