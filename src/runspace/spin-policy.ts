/**
 * Whether a runspace polls for its next call before it sleeps, and for how
 * long (decision 0004).
 *
 * Polling pays when the next call arrives within the poll: the runspace is
 * awake for it and the caller skips a thread wake-up. Two things make it
 * costly, and each turns it off:
 * - other processes keep the machine busy: the poll holds a core the
 *   caller's thread needs to send the call the poll waits for. The main
 *   thread measures that and closes the spin gate (pool/spare-cores.ts);
 * - calls do not come that fast: polls that run out are CPU thrown away. After
 *   a few in a row the runspace sleeps at once, and tries polling again after
 *   a number of idle transitions that doubles with each failed try.
 *
 * @module
 */

import { SpinGateSlot } from '../protocol/spin-gate.js';

/** Polls in a row that may find nothing before polling pauses. */
const MISSES_BEFORE_PAUSE = 4;
const FIRST_PAUSE = 8;
const LONGEST_PAUSE = 1024;

export class SpinPolicy {
  #misses = 0;
  #pausedFor = 0;
  #nextPause = FIRST_PAUSE;

  /**
   * @param budgetMs the poll's length; 0 never polls.
   * @param gate the process's spin gate (see protocol/spin-gate.ts).
   */
  constructor(
    readonly budgetMs: number,
    readonly gate: Int32Array,
  ) {}

  /** Whether to poll at this idle transition. */
  shouldPoll(): boolean {
    if (this.budgetMs <= 0 || Atomics.load(this.gate, SpinGateSlot.Allowed) === 0) return false;
    if (this.#pausedFor > 0) {
      this.#pausedFor--;
      return false;
    }
    return true;
  }

  /** A poll ended; `found` says whether work came. */
  polled(found: boolean): void {
    if (found) {
      this.#misses = 0;
      this.#nextPause = FIRST_PAUSE;
      return;
    }
    if (++this.#misses < MISSES_BEFORE_PAUSE) return;
    this.#misses = 0;
    this.#pausedFor = this.#nextPause;
    this.#nextPause = Math.min(LONGEST_PAUSE, this.#nextPause * 2);
  }
}
