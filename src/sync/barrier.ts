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
 *  FAILED    (phase + 1) of the last phase whose post-phase action threw, or 0
 * ```
 *
 * The action's error itself waits in a small buffer of its own (name,
 * message, stack and `code` as JSON), written before the phase completes, so
 * every participant released from that phase reads it and throws
 * `BarrierPostPhaseError`, as .NET's participants all get
 * `BarrierPostPhaseException`. A participant of phase p reads FAILED before
 * phase p + 1 can complete (that needs its own arrival), so the slot holds
 * one phase's outcome at a time.
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
import { BarrierPostPhaseError, InvalidArgumentError, InvalidOperationError, messageOf, shown } from '../errors.js';
import { Kind, newCell, Slot, type Cell } from './arena.js';
import type { WaitOptions } from './event-handle.js';
import { HandleState } from './handles.js';
import { openExistingNamed, openNamed, tryOpenExistingNamed, type NamedCell } from './named.js';
import { adoptCell, registerKind, shareCell, takeAdopted, type BarrierExtras, type SharedHandle } from './shared-cells.js';
import { assertMayBlock, blockUntil, deadlineAndSignal, deadlineOf, waitUntil } from './waiting.js';
import { timeoutMs } from '../util/deadline.js';

const PHASE_SHIFT = 16;
const ARRIVED_MASK = 0xffff;
const MAX_PARTICIPANTS = 0x7fff;
const FAILED = Slot.Abandoned;
/** Bytes for the post-phase action's error: its message and the top of its stack. */
const FAILURE_BYTES = 4096;
const FAILURE_HEADER = 8;

/** Barriers (by cell id) whose post-phase action this thread is running: they refuse to be changed or waited on from it. */
const actionsRunningHere = new Set<number>();

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
 * back out of the phase. If the post-phase action throws, the phase still
 * completes and every participant of it gets a `BarrierPostPhaseError`
 * carrying the action's error. The action may not add, remove or signal
 * participants of its own barrier (`InvalidOperationError`), as in .NET.
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
  readonly #name: string | null;
  readonly #actionSource: string | null;
  /** Where the action's last error is written for every participant; none without an action. */
  readonly #failure: SharedArrayBuffer | undefined;
  #action: PostPhaseAction | undefined;
  readonly #handle: HandleState;
  /** The error of the action this object ran last, handed to its own caller as is. */
  #ownFailure: { readonly phase: number; readonly error: unknown } | undefined;

  constructor(participantCount: number, postPhaseAction?: PostPhaseAction) {
    const adopted = takeAdopted();
    if (adopted !== undefined) {
      this.#cell = adopted.cell;
      this.#name = adopted.name;
      this.#actionSource = adopted.barrier?.action ?? null;
      this.#failure = adopted.barrier?.failure;
    } else {
      assertParticipants('participantCount', participantCount, 0);
      if (postPhaseAction !== undefined && typeof postPhaseAction !== 'function') {
        throw new InvalidArgumentError('postPhaseAction', 'expected a function (barrier) => void');
      }
      this.#cell = newCell(Kind.Barrier);
      this.#cell.slots[Slot.Maximum] = participantCount;
      this.#action = postPhaseAction;
      this.#name = null;
      this.#actionSource = postPhaseAction === undefined ? null : Function.prototype.toString.call(postPhaseAction);
      this.#failure = postPhaseAction === undefined ? undefined : new SharedArrayBuffer(FAILURE_BYTES);
    }
    this.#slots = this.#cell.slots;
    this.#handle = new HandleState(this, this.#cell, 'Barrier');
  }

  /** @internal */
  static fromCell(cell: Cell, name: string | null, extras: BarrierExtras | undefined): Barrier {
    return adoptCell(cell, name, () => new Barrier(0), { barrier: extras });
  }

  /**
   * The barrier of this name in this process, created for `participantCount`
   * when there is none. A named barrier has no post-phase action: the
   * runspaces that open it by name would have no source to run it from.
   *
   * @example
   * ```ts
   * const { barrier } = Barrier.open('import-phases', 2);
   * const runspace = pool.invoke(async () => {
   *   const { Barrier } = await import('runspaces');
   *   Barrier.openExisting('import-phases').signalAndWait();   // found by name, no `using` needed
   * });
   * await barrier.signalAndWaitAsync();
   * await runspace;
   * ```
   */
  static open(name: string, participantCount: number): { barrier: Barrier; createdNew: boolean } {
    assertParticipants('participantCount', participantCount, 0);
    const found = openNamed(Kind.Barrier, name, (slots) => {
      slots[Slot.Maximum] = participantCount;
    });
    return { barrier: Barrier.#named(found), createdNew: found.createdNew };
  }

  /** The barrier of this name; `WaitHandleNotFoundError` when there is none, `WaitHandleKindError` when the name is another kind's. */
  static openExisting(name: string): Barrier {
    return Barrier.#named(openExistingNamed(Kind.Barrier, name));
  }

  /** The barrier of this name, or undefined when there is none (or the name is another kind's). */
  static tryOpenExisting(name: string): Barrier | undefined {
    const found = tryOpenExistingNamed(Kind.Barrier, name);
    return found === undefined ? undefined : Barrier.#named(found);
  }

  static #named(found: NamedCell): Barrier {
    return Barrier.fromCell(found.cell, found.name, undefined);
  }

  /** The name given to `open`, or null. */
  get name(): string | null {
    return this.#name;
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
    this.#handle.assertLive();
    assertParticipants('count', count, 1);
    this.#refuseFromAction('addParticipants');
    for (;;) {
      const participants = Atomics.load(this.#slots, Slot.Maximum);
      if (participants + count > MAX_PARTICIPANTS) throw new InvalidOperationError(`A barrier holds at most ${MAX_PARTICIPANTS} participants.`);
      if (Atomics.compareExchange(this.#slots, Slot.Maximum, participants, participants + count) === participants) return this.currentPhaseNumber;
    }
  }

  /** Removes participants that have not arrived; completes the phase if the rest are all there. */
  removeParticipants(count = 1): void {
    this.#handle.assertLive();
    assertParticipants('count', count, 1);
    this.#refuseFromAction('removeParticipants');
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
      if (arrived > 0 && arrived === participants - count) {
        this.#completePhase(state);
        this.#throwIfFailed(state >>> PHASE_SHIFT);
      }
      return;
    }
  }

  /** Arrives and blocks this runspace until every participant has (true) or `timeout` ms pass (false, arrival withdrawn). */
  signalAndWait(timeout?: number): boolean {
    this.#handle.assertLive();
    this.#refuseFromAction('signalAndWait');
    if (isMainThread) assertMayBlock('Barrier.signalAndWait', 'await barrier.signalAndWaitAsync()');
    const deadline = deadlineOf(timeoutMs('timeout', timeout));
    const phase = this.#arrive();
    const passed = blockUntil(this.#slots, Slot.State, Slot.Waiters, () => this.#phaseOf() !== phase, deadline);
    return this.#passed(phase, passed || !this.#withdraw(phase));
  }

  /** Arrives and waits without blocking: true when the phase completed, false on timeout (arrival withdrawn); rejects on abort. */
  async signalAndWaitAsync(options?: WaitOptions): Promise<boolean> {
    this.#handle.assertLive();
    const [deadline, signal] = deadlineAndSignal(options);
    const phase = this.#arrive();
    let passed: boolean;
    try {
      passed = await waitUntil(this.#slots, Slot.State, Slot.Waiters, () => this.#phaseOf() !== phase, deadline, signal);
    } catch (error) {
      if (this.#withdraw(phase)) throw error;
      passed = true;
    }
    return this.#passed(phase, passed || !this.#withdraw(phase));
  }

  /**
   * Disposes this object (also `using`): later calls throw
   * `ObjectDisposedError`; a name is freed once every object viewing it, in
   * any thread, is disposed or collected.
   */
  dispose(): void {
    this.#handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal */
  toShared(): SharedHandle {
    this.#handle.retainForCrossing();
    return shareCell(Kind.Barrier, this.#cell, this.#name, { barrier: { action: this.#actionSource, failure: this.#failure } });
  }

  /** The outcome of a wait in `phase`: a phase whose action threw is the action's error, for every participant. */
  #passed(phase: number, passed: boolean): boolean {
    if (passed) this.#throwIfFailed(phase);
    return passed;
  }

  #throwIfFailed(phase: number): void {
    if (Atomics.load(this.#slots, FAILED) !== phase + 1) return;
    throw new BarrierPostPhaseError(phase, { cause: this.#readFailure() });
  }

  #refuseFromAction(method: string): void {
    if (actionsRunningHere.has(this.#slots[Slot.Id]!)) {
      throw new InvalidOperationError(`Barrier.${method} cannot be called from the barrier's own post-phase action.`);
    }
  }

  #phaseOf(): number {
    return Atomics.load(this.#slots, Slot.State) >>> PHASE_SHIFT;
  }

  /** Counts this arrival; returns its phase (already complete when this arrival completed it). */
  #arrive(): number {
    this.#refuseFromAction('signalAndWait');
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
      return state >>> PHASE_SHIFT;
    }
  }

  /**
   * Runs the post-phase action, records whether it threw (and what, for the
   * other participants), then opens the next phase. The participant that
   * completed the phase learns of a failure as the others do, through
   * FAILED: it keeps the error itself as the cause.
   */
  #completePhase(state: number): void {
    const phase = state >>> PHASE_SHIFT;
    const next = ((phase + 1) & MAX_PARTICIPANTS) << PHASE_SHIFT;
    const id = this.#slots[Slot.Id]!;
    let failed = false;
    actionsRunningHere.add(id);
    try {
      this.#postPhaseAction()?.(this);
    } catch (error) {
      failed = true;
      this.#ownFailure = { phase, error };
      this.#writeFailure(error);
    } finally {
      actionsRunningHere.delete(id);
      Atomics.store(this.#slots, FAILED, failed ? phase + 1 : 0);
      Atomics.store(this.#slots, Slot.State, next);
      if (Atomics.load(this.#slots, Slot.Waiters) > 0) Atomics.notify(this.#slots, Slot.State);
    }
  }

  #writeFailure(error: unknown): void {
    if (this.#failure === undefined) return;
    const described = describeError(error);
    let bytes = new TextEncoder().encode(JSON.stringify(described));
    const room = FAILURE_BYTES - FAILURE_HEADER;
    if (bytes.length > room) bytes = new TextEncoder().encode(JSON.stringify({ ...described, stack: undefined, message: described.message.slice(0, room / 8) }));
    new Uint8Array(this.#failure, FAILURE_HEADER).set(bytes.subarray(0, room));
    new Int32Array(this.#failure, 0, 1)[0] = Math.min(bytes.length, room);
  }

  #readFailure(): unknown {
    const phase = (Atomics.load(this.#slots, FAILED) - 1) & MAX_PARTICIPANTS;
    const own = this.#ownFailure;
    if (own !== undefined && own.phase === phase) return own.error;
    if (this.#failure === undefined) return new Error('the post-phase action threw');
    const length = new Int32Array(this.#failure, 0, 1)[0]!;
    // Decoding copies: a shared buffer cannot be decoded in place.
    const text = new TextDecoder().decode(new Uint8Array(this.#failure, FAILURE_HEADER, length).slice());
    try {
      return rebuildError(JSON.parse(text) as DescribedError);
    } catch {
      return new Error('the post-phase action threw (its error could not be read)');
    }
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

interface DescribedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string | undefined;
  readonly code?: string | undefined;
}

/** What of an error crosses to the other participants (the sync layer sits below the protocol's error codec). */
function describeError(error: unknown): DescribedError {
  const message = messageOf(error);
  if (!(error instanceof Error)) return { name: 'Error', message };
  let name = 'Error';
  let stack: string | undefined;
  let code: string | undefined;
  try {
    name = String(error.name);
    stack = typeof error.stack === 'string' ? error.stack : undefined;
    const own = (error as { code?: unknown }).code;
    code = typeof own === 'string' ? own : undefined;
  } catch {
    // A getter that throws leaves the rest out.
  }
  return { name, message, stack, code };
}

function rebuildError(described: DescribedError): Error {
  const error = new Error(described.message);
  error.name = described.name;
  if (described.stack !== undefined) error.stack = described.stack;
  if (described.code !== undefined) (error as Error & { code?: string }).code = described.code;
  return error;
}

registerKind(Kind.Barrier, Barrier, (cell, { name, barrier }) => Barrier.fromCell(cell, name, barrier));
