/**
 * One unit of accepted work, from `invoke()` until its promise settles.
 *
 * **The settle rule.** Every accepted task settles exactly once: with its
 * result, its error, a cancellation error, `RunspaceBrokenError` when it had
 * started in a runspace that died, or `PoolClosedError` when the pool closed
 * before it started. "Exactly once" is enforced here: `resolve`/`reject` on a
 * settled task are ignored, which is what lets a timeout, an abort, a result
 * and a runspace's death race safely. "At least once" is enforced where tasks
 * can get stuck: a runspace hands back every task it holds when it exits
 * (`RunspaceHost`, split into started and unstarted), and the supervisor
 * settles or requeues each of them; the waiting line is drained with
 * `PoolClosedError` when the pool closes or breaks.
 *
 * Only `pool/` changes a task. The layers above see a {@link TaskView}.
 *
 * @module
 */

import { OperationCancelledError, TimeoutError } from '../errors.js';
import type { CancelKind, ChunkOutcome, FunctionRef, ScriptDefinition, WireChunk } from '../protocol/messages.js';
import type { StreamRecord } from '../protocol/stream-records.js';
import type { TransferListItem } from 'node:worker_threads';
import { invariant } from '../util/invariant.js';
import type { CostEstimate } from './batching.js';

export type TaskState = 'queued' | 'dispatched' | 'settled';

export interface TaskSpec {
  readonly fn: FunctionRef;
  readonly definition: ScriptDefinition | undefined;
  readonly args: readonly unknown[];
  readonly using: Readonly<Record<string, unknown>> | undefined;
  readonly transfer: readonly TransferListItem[] | undefined;
  readonly cost: CostEstimate;
  readonly onRecord: ((record: StreamRecord) => void) | undefined;
  /** A parallel loop's chunk of items, run as `fn(item, ctx)` each. */
  readonly chunk?: WireChunk;
  /** Id under which runspaces cache `using` (a parallel loop's), sent once per runspace. */
  readonly usingId?: number;
  /** A thread job's input objects (`ctx.input`). */
  readonly input?: readonly unknown[];
  /** Settle with the runspace's result even when cancelled (a chunk's partial outcome). */
  readonly keepResultWhenCancelled?: boolean;
  /** Receives a long chunk's outcomes in parts, before its result (see `ChunkOutcome`). */
  readonly onPartial?: (outcome: ChunkOutcome) => void;
  /** Told when each item of its chunk starts, by loop index (only when the chunk asks, `reportStarts`). */
  readonly onItemStarted?: (index: number) => void;
}

/** What the layers above the pool may read of a task they submitted. */
export interface TaskView {
  readonly promise: Promise<unknown>;
  /** Sent to a runspace and not settled. */
  readonly dispatched: boolean;
  /** The runspace it was last sent to. */
  readonly runspaceId: number | undefined;
  /** For a chunk lost with its runspace: how many of its items had started. */
  readonly itemsStarted: number;
  /** For a task lost with its runspace: true when it was running then, false when it had finished but its result had not arrived. */
  readonly lostWhileRunning: boolean;
  /** It was rejected because this item of its chunk (a position in the chunk) cannot be sent. */
  readonly uncloneableItem: number | undefined;
}

/** The runspace a task was sent to, as far as a task needs to know. */
export interface TaskRunner {
  readonly id: number;
}

export class Task<H extends TaskRunner = TaskRunner> implements TaskView {
  #state: TaskState = 'queued';
  #host: H | undefined;
  #seq = 0;
  readonly enqueuedAt = performance.now();
  #cancelKind: CancelKind | undefined;
  #cancelReason: unknown;
  #itemsStarted = 0;
  #lostWhileRunning = false;
  #uncloneableItem: number | undefined;
  readonly promise: Promise<unknown>;
  #resolve!: (value: unknown) => void;
  #reject!: (error: unknown) => void;
  #cleanups: (() => void)[] | undefined;

  /**
   * @param timeout Milliseconds until it is cancelled (named in its `TimeoutError`).
   * @param cancellable It has a signal or a timeout: it may settle while it waits in line.
   */
  constructor(readonly spec: TaskSpec, readonly timeout: number | undefined, readonly cancellable = false) {
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  get state(): TaskState {
    return this.#state;
  }

  get settled(): boolean {
    return this.#state === 'settled';
  }

  get dispatched(): boolean {
    return this.#state === 'dispatched';
  }

  /** The runspace it was sent to (kept after it settles, for the record). */
  get host(): H | undefined {
    return this.#host;
  }

  get runspaceId(): number | undefined {
    return this.#host?.id;
  }

  /** Sequence number on its runspace, once dispatched. */
  get seq(): number {
    return this.#seq;
  }

  get cancelKind(): CancelKind | undefined {
    return this.#cancelKind;
  }

  get itemsStarted(): number {
    return this.#itemsStarted;
  }

  get lostWhileRunning(): boolean {
    return this.#lostWhileRunning;
  }

  get uncloneableItem(): number | undefined {
    return this.#uncloneableItem;
  }

  /** Sent to `host` as its `seq`-th task. */
  placeOn(host: H, seq: number): void {
    invariant(this.#state === 'queued', `a ${this.#state} task cannot be dispatched`);
    this.#state = 'dispatched';
    this.#host = host;
    this.#seq = seq;
  }

  /** Back in line: its send failed, or its runspace died before starting it. */
  requeue(): void {
    if (this.#state === 'settled') return;
    this.#state = 'queued';
    this.#host = undefined;
    this.#seq = 0;
  }

  /** Records that its runspace died after starting it: `itemsStarted` items of its chunk begun, still running or not. */
  lostAfter(itemsStarted: number, running: boolean): void {
    this.#itemsStarted = itemsStarted;
    this.#lostWhileRunning = running;
  }

  /** Marks cancellation as asked for; false when it settled or was already cancelled. */
  markCancelled(kind: CancelKind, reason: unknown): boolean {
    if (this.#state === 'settled' || this.#cancelKind !== undefined) return false;
    this.#cancelKind = kind;
    this.#cancelReason = reason;
    return true;
  }

  onSettle(cleanup: () => void): void {
    (this.#cleanups ??= []).push(cleanup);
  }

  resolve(value: unknown): void {
    if (this.#finish()) this.#resolve(value);
  }

  reject(error: unknown): void {
    if (this.#finish()) this.#reject(error);
  }

  /** Rejects because item `position` of its chunk cannot be sent (the loop fails it alone and sends the others again). */
  rejectUncloneableItem(position: number, error: unknown): void {
    if (this.#state === 'settled') return;
    this.#uncloneableItem = position;
    this.reject(error);
  }

  /** The error a cancelled task settles with. */
  cancellationError(runspaceRecycled: boolean): Error {
    return this.#cancelKind === 'timeout'
      ? new TimeoutError(this.timeout ?? 0, runspaceRecycled)
      : new OperationCancelledError(this.#cancelReason, runspaceRecycled);
  }

  #finish(): boolean {
    if (this.#state === 'settled') return false;
    this.#state = 'settled';
    const cleanups = this.#cleanups;
    this.#cleanups = undefined;
    if (cleanups !== undefined) for (const cleanup of cleanups) cleanup();
    return true;
  }
}
