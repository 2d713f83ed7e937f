/**
 * Adaptive batching. A message between threads costs tens of microseconds;
 * a tiny task costs well under one. So the pool sends quick tasks to a
 * runspace several per message, and keeps a second batch queued behind the
 * running one so the runspace never idles waiting for the main thread.
 *
 * How many per message comes from a running estimate of each function's cost,
 * learnt from the run times runspaces report. A function never seen before is
 * assumed slow (sent one at a time, not pipelined) until its first result
 * says otherwise, so slow work always spreads evenly over runspaces.
 *
 * @module
 */

/** Work per message the pool aims for: enough to hide the message cost. */
export const TARGET_BATCH_NS = 300_000;
/** Upper bound on tasks per message, so one message never grows huge. */
export const MAX_BATCH_TASKS = 256;
/** A runspace already holding this much estimated work gets no more ahead of time. */
export const PIPELINE_LIMIT_NS = 1_000_000;
/**
 * A runspace that has neither answered nor started anything for this long
 * while calls wait behind the one it runs is stuck on that call: the calls
 * behind it are taken back and run elsewhere (a quick call may block, on a
 * lock or a barrier that a call queued behind it would release).
 */
export const STALLED_AFTER_MS = 50;
/** Assumed cost of a function never measured: slow enough to be sent alone. */
export const UNKNOWN_COST_NS = 2_000_000;

const SMOOTHING = 0.2;

/** Running estimate of one function's run time. */
export class CostEstimate {
  #ns = UNKNOWN_COST_NS;
  #known = false;

  get ns(): number {
    return this.#ns;
  }

  record(sampleNs: number): void {
    this.#ns = this.#known ? this.#ns + (sampleNs - this.#ns) * SMOOTHING : sampleNs;
    this.#known = true;
  }
}

/** At most a fair share of the queue per runspace, so every runspace gets work. */
export function fairShare(queued: number, runspaces: number): number {
  return Math.max(1, Math.min(MAX_BATCH_TASKS, Math.ceil(queued / Math.max(1, runspaces))));
}
