/**
 * Barrier: participants meet at the end of each phase; none goes on until
 * all have arrived.
 *
 * ## Slots
 * ```
 *  STATE     phase << 16 | arrived: one word, so arriving, completing a phase
 *            and withdrawing after a timeout are each one compare-exchange
 *  MAXIMUM   participants (1..32767)
 *  WAITERS   participants asleep, so a completed phase skips notify when none
 * ```
 *
 * An arrival that brings `arrived` to the participant count completes the
 * phase: it runs the post-phase action, then writes `(phase + 1) << 16`, which
 * both resets `arrived` and lets every sleeper see the phase change. A
 * participant whose wait times out withdraws its arrival only if its phase is
 * still open; if the phase completed meanwhile, it passed.
 *
 * The post-phase action runs in whichever thread arrives last, which may be
 * any runspace. So it crosses threads as script blocks do: by its source, with
 * no closure. In the thread that created the barrier the original function
 * runs, closure and all; elsewhere, a copy compiled from its source.
 *
 * @module
 */

import { isMainThread } from 'node:worker_threads';
import { InvalidArgumentError, InvalidOperationError, shown } from '../errors.js';
import { Kind, newCell, Slot, type Cell } from './arena.js';
import type { WaitOptions } from './event-handle.js';
import { adoptCell, registerKind, shareCell, takeAdopted, type SharedHandle } from './shared-cells.js';
import { assertMayBlock, blockUntil, deadlineAndSignal, deadlineOf, waitUntil } from './waiting.js';
import { timeoutMs } from '../util/deadline.js';

const PHASE_SHIFT = 16;
const ARRIVED_MASK = 0xffff;
const MAX_PARTICIPANTS = 0x7fff;

/** Runs once per phase, after every participant arrived and before any is released (`Barrier`'s post-phase action). */
export type PostPhaseAction = (barrier: Barrier) => void;


function assertParticipants(name: string, value: unknown, min: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_PARTICIPANTS) {
    throw new InvalidArgumentError(name, `expected an integer from ${min} to ${MAX_PARTICIPANTS}, got ${shown(value)}`);
  }
}

/**
 * A barrier for `participantCount` participants (runspaces or async tasks):
 * each calls `signalAndWait()` at the end of a phase and continues only when
 * all have.
 *
 * Blocking `signalAndWait` is for runspaces (refused on the main thread);
 * `signalAndWaitAsync` never blocks. A participant that times out is taken
 * back out of the phase. If the post-phase action throws, the participant
 * that ran it gets the error; the phase still completes.
 *
 * @example
 * ```ts
 * const step = new Barrier(4, () => console.log('phase done'));
 * await Promise.all([0, 1, 2, 3].map((i) => pool.invoke((ctx, part: number) => {
 *   for (let phase = 0; phase < 10; phase++) {
 *     ctx.session.set('state', `part ${part} at phase ${phase}`);   // this phase's share of the work
 *     ctx.using.step.signalAndWait();                                // then wait for the other parts
 *   }
 * }, { args: [i], using: { step } })));
 * ```
 */
export class Barrier {
  readonly #cell: Cell;
  readonly #slots: Int32Array;
  readonly #actionSource: string | null;
  #action: PostPhaseAction | undefined;

  constructor(participantCount: number, postPhaseAction?: PostPhaseAction) {
    const adopted = takeAdopted();
    if (adopted !== undefined) {
      this.#cell = adopted.cell;
      this.#actionSource = adopted.name;
    } else {
      assertParticipants('participantCount', participantCount, 0);
      if (postPhaseAction !== undefined && typeof postPhaseAction !== 'function') {
        throw new InvalidArgumentError('postPhaseAction', 'expected a function (barrier) => void');
      }
      this.#cell = newCell(Kind.Barrier);
      this.#cell.slots[Slot.Maximum] = participantCount;
      this.#action = postPhaseAction;
      this.#actionSource = postPhaseAction === undefined ? null : Function.prototype.toString.call(postPhaseAction);
    }
    this.#slots = this.#cell.slots;
  }

  /** @internal */
  static fromCell(cell: Cell, action: string | null): Barrier {
    return adoptCell(cell, action, () => new Barrier(0));
  }

  get participantCount(): number {
    return Atomics.load(this.#slots, Slot.Maximum);
  }

  /** Participants that have not yet arrived in the current phase. */
  get participantsRemaining(): number {
    return this.participantCount - (Atomics.load(this.#slots, Slot.State) & ARRIVED_MASK);
  }

  /** The current phase, counting from 0 (wraps after 32767). */
  get currentPhaseNumber(): number {
    return Atomics.load(this.#slots, Slot.State) >>> PHASE_SHIFT;
  }

  /** Adds participants to the current and later phases; returns the phase they join. */
  addParticipants(count = 1): number {
    assertParticipants('count', count, 1);
    for (;;) {
      const participants = Atomics.load(this.#slots, Slot.Maximum);
      if (participants + count > MAX_PARTICIPANTS) throw new InvalidOperationError(`A barrier holds at most ${MAX_PARTICIPANTS} participants.`);
      if (Atomics.compareExchange(this.#slots, Slot.Maximum, participants, participants + count) === participants) return this.currentPhaseNumber;
    }
  }

  /** Removes participants that have not arrived; completes the phase if the rest are all there. */
  removeParticipants(count = 1): void {
    assertParticipants('count', count, 1);
    const slots = this.#slots;
    for (;;) {
      const participants = Atomics.load(slots, Slot.Maximum);
      const state = Atomics.load(slots, Slot.State);
      const arrived = state & ARRIVED_MASK;
      // As .NET's RemoveParticipants: none to remove is an invalid operation, more than there are an
      // out-of-range argument, more than have not arrived an invalid operation (BarrierTests).
      if (participants === 0) throw new InvalidOperationError('The barrier has no participants to remove.');
      if (count > participants) throw new InvalidArgumentError('count', `cannot remove ${count} participants from a barrier of ${participants}`);
      if (count > participants - arrived) {
        throw new InvalidOperationError(`Cannot remove ${count} participant(s): only ${participants - arrived} have not arrived in this phase.`);
      }
      if (Atomics.compareExchange(slots, Slot.Maximum, participants, participants - count) !== participants) continue;
      if (arrived > 0 && arrived === participants - count) this.#completePhase(state);
      return;
    }
  }

  /** Arrives and blocks this runspace until every participant has (true) or `timeout` ms pass (false, arrival withdrawn). */
  signalAndWait(timeout?: number): boolean {
    if (isMainThread) assertMayBlock('Barrier.signalAndWait', 'await barrier.signalAndWaitAsync()');
    const deadline = deadlineOf(timeoutMs('timeout', timeout));
    const phase = this.#arrive();
    if (phase === undefined) return true;
    const passed = blockUntil(this.#slots, Slot.State, Slot.Waiters, () => this.#phaseOf() !== phase, deadline);
    return passed || !this.#withdraw(phase);
  }

  /** Arrives and waits without blocking: true when the phase completed, false on timeout (arrival withdrawn); rejects on abort. */
  async signalAndWaitAsync(options?: WaitOptions): Promise<boolean> {
    const [deadline, signal] = deadlineAndSignal(options);
    const phase = this.#arrive();
    if (phase === undefined) return true;
    try {
      const passed = await waitUntil(this.#slots, Slot.State, Slot.Waiters, () => this.#phaseOf() !== phase, deadline, signal);
      return passed || !this.#withdraw(phase);
    } catch (error) {
      if (!this.#withdraw(phase)) return true;
      throw error;
    }
  }

  /** @internal */
  toShared(): SharedHandle {
    return shareCell(Kind.Barrier, this.#cell, this.#actionSource);
  }

  #phaseOf(): number {
    return Atomics.load(this.#slots, Slot.State) >>> PHASE_SHIFT;
  }

  /** Counts this arrival; returns its phase, or undefined when it completed the phase. */
  #arrive(): number | undefined {
    const slots = this.#slots;
    for (;;) {
      const participants = Atomics.load(slots, Slot.Maximum);
      const state = Atomics.load(slots, Slot.State);
      const arrived = (state & ARRIVED_MASK) + 1;
      if (participants === 0) throw new InvalidOperationError('The barrier has no participants; add some before signaling.');
      if (arrived > participants) throw new InvalidOperationError('More participants signaled in this phase than the barrier has.');
      if (Atomics.compareExchange(slots, Slot.State, state, state + 1) !== state) continue;
      if (arrived < participants) return state >>> PHASE_SHIFT;
      // Last one in: a full count also stops anyone withdrawing from this phase.
      this.#completePhase(state);
      return undefined;
    }
  }

  #completePhase(state: number): void {
    const next = (((state >>> PHASE_SHIFT) + 1) & MAX_PARTICIPANTS) << PHASE_SHIFT;
    let failure: unknown;
    try {
      this.#postPhaseAction()?.(this);
    } catch (error) {
      failure = error;
    } finally {
      Atomics.store(this.#slots, Slot.State, next);
      if (Atomics.load(this.#slots, Slot.Waiters) > 0) Atomics.notify(this.#slots, Slot.State);
    }
    if (failure !== undefined) throw failure;
  }

  /** Takes this participant's arrival back if its phase is still open; false when it completed or is completing. */
  #withdraw(phase: number): boolean {
    const slots = this.#slots;
    for (;;) {
      const state = Atomics.load(slots, Slot.State);
      if (state >>> PHASE_SHIFT !== phase || (state & ARRIVED_MASK) >= Atomics.load(slots, Slot.Maximum)) return false;
      if (Atomics.compareExchange(slots, Slot.State, state, state - 1) === state) return true;
    }
  }

  #postPhaseAction(): PostPhaseAction | undefined {
    if (this.#action === undefined && this.#actionSource !== null) {
      this.#action = new Function(`return (${this.#actionSource}\n);`)() as PostPhaseAction;
    }
    return this.#action;
  }
}

registerKind(Kind.Barrier, Barrier, (cell, action) => Barrier.fromCell(cell, action));
