/**
 * One unit of accepted work, from `invoke()` until its promise settles. A task
 * settles exactly once; every later attempt is ignored, which is what lets a
 * timeout, an abort, a result and a runspace's death race safely.
 *
 * @module
 */

import { OperationCancelledError, TimeoutError } from '../errors.js';
import type { CancelKind, FunctionRef, ScriptDefinition, WireChunk } from '../protocol/messages.js';
import type { StreamRecord } from '../protocol/stream-records.js';
import type { TransferListItem } from 'node:worker_threads';
import type { CostEstimate } from './batching.js';
import type { RunspaceHost } from './runspace-host.js';

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
}

export class Task {
  state: TaskState = 'queued';
  host: RunspaceHost | undefined;
  /** Sequence number on its runspace, once dispatched. */
  seq = 0;
  readonly enqueuedAt = performance.now();
  dispatchedAt = 0;
  /** Set once cancellation was asked for; decides how the task settles. */
  cancelKind: CancelKind | undefined;
  cancelReason: unknown;
  /** For a chunk lost with its runspace: how many of its items had started. */
  itemsStarted = 0;
  readonly promise: Promise<unknown>;
  #resolve!: (value: unknown) => void;
  #reject!: (error: unknown) => void;
  #cleanups: (() => void)[] | undefined;

  constructor(readonly spec: TaskSpec, readonly timeout: number | undefined) {
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  get settled(): boolean {
    return this.state === 'settled';
  }

  onSettle(cleanup: () => void): void {
    (this.#cleanups ??= []).push(cleanup);
  }

  resolve(value: unknown): void {
    if (this.state === 'settled') return;
    this.state = 'settled';
    this.#runCleanups();
    this.#resolve(value);
  }

  reject(error: unknown): void {
    if (this.state === 'settled') return;
    this.state = 'settled';
    this.#runCleanups();
    this.#reject(error);
  }

  /** The error a cancelled task settles with. */
  cancellationError(runspaceRecycled: boolean): Error {
    return this.cancelKind === 'timeout'
      ? new TimeoutError(this.timeout ?? 0, runspaceRecycled)
      : new OperationCancelledError(this.cancelReason, runspaceRecycled);
  }

  #runCleanups(): void {
    const cleanups = this.#cleanups;
    if (cleanups === undefined) return;
    this.#cleanups = undefined;
    for (const cleanup of cleanups) cleanup();
  }
}
