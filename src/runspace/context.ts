/**
 * The `ctx` a script block receives as its first argument: its `using`
 * values, its runspace's session, its cancellation signal, and the stream
 * writers whose records reach the caller.
 *
 * @module
 */

import { serializeError } from '../protocol/error-codec.js';
import { cancelSlot, type CancelKind } from '../protocol/messages.js';
import type { ProgressInfo, WireRecord } from '../protocol/stream-records.js';
import type { SessionState } from './session-state.js';

/** What a script block can see and do. `U` is the shape of its `using` values. */
export interface RunspaceContext<U = Readonly<Record<string, unknown>>> {
  /** The `using` values of the call: evaluated once by the caller, cloned into this runspace. */
  readonly using: U;
  /** This runspace's state; persists between calls that run here. */
  readonly session: SessionState;
  /** Id of the runspace running this call (its worker thread id). */
  readonly runspaceId: number;
  /** Namespaces of the pool's `initialSessionState.modules`, in the order given. */
  readonly modules: readonly Record<string, unknown>[];
  /**
   * Aborted when the caller cancels (its `signal`) or the call's `timeout`
   * passes. Reading `signal.aborted` also notices a cancellation while a
   * synchronous loop holds the thread, without yielding.
   */
  readonly signal: AbortSignal;
  /** True once cancellation was requested; cheap enough to poll in a hot loop. */
  readonly cancellationRequested: boolean;
  /** Throws the signal's reason when cancellation was requested. */
  throwIfCancellationRequested(): void;
  writeWarning(message: string): void;
  writeVerbose(message: string): void;
  writeDebug(message: string): void;
  /** Structured information, as `Write-Information` (data plus tags). */
  writeInformation(data: unknown, tags?: readonly string[]): void;
  /** A non-terminating error: recorded for the caller, the call goes on. */
  writeError(error: unknown): void;
  writeProgress(progress: ProgressInfo): void;
  /**
   * Output while the call runs (`Write-Output`): a thread job's `receive()`
   * returns it at once, before the job ends, and keeps it if the job is
   * stopped; the job's return value, unless `undefined`, comes after it. In
   * `invoke` and loops it arrives as a record (`stream: 'output'`) through
   * `onRecord` or the pool's `record` event; the call still resolves with its
   * return value.
   */
  writeOutput(value: unknown): void;
}

export interface ContextHost {
  readonly runspaceId: number;
  readonly session: SessionState;
  readonly modules: readonly Record<string, unknown>[];
  readonly control: Int32Array;
  postRecord(seq: number, record: WireRecord): void;
}

function cancelReason(kind: CancelKind): DOMException {
  return kind === 'timeout'
    ? new DOMException('The operation timed out.', 'TimeoutError')
    : new DOMException('The operation was aborted.', 'AbortError');
}

/** The `ctx` of a parallel loop's function: a runspace context plus the item's place in the input. */
export interface ParallelContext<U = Readonly<Record<string, unknown>>> extends RunspaceContext<U> {
  /** Index of the current item in the loop's input, counting from 0. */
  readonly index: number;
}

/** The `ctx` of a thread job's function: a runspace context plus the job's input objects. */
export interface JobContext<U = Readonly<Record<string, unknown>>> extends RunspaceContext<U> {
  /** The job's `input` objects (PowerShell's `$input`); empty when none were given. */
  readonly input: readonly unknown[];
}

const NO_INPUT: readonly unknown[] = Object.freeze([]);

export class TaskContext implements RunspaceContext, JobContext {
  #controller: AbortController | undefined;
  #cancelKind: CancelKind | undefined;
  /** Set while a parallel loop's item runs: tags its records. */
  index: number | undefined;

  constructor(
    readonly seq: number,
    readonly using: Readonly<Record<string, unknown>>,
    readonly host: ContextHost,
    readonly input: readonly unknown[] = NO_INPUT,
  ) {}

  get session(): SessionState {
    return this.host.session;
  }

  get runspaceId(): number {
    return this.host.runspaceId;
  }

  get modules(): readonly Record<string, unknown>[] {
    return this.host.modules;
  }

  get cancellationRequested(): boolean {
    if (this.#cancelKind !== undefined) return true;
    // The pool writes the sequence number before it posts the cancel message,
    // so a synchronous loop sees the request without yielding to the event loop.
    if (Atomics.load(this.host.control, cancelSlot(this.seq)) === this.seq) {
      this.cancel('abort');
      return true;
    }
    return false;
  }

  throwIfCancellationRequested(): void {
    if (this.cancellationRequested) throw this.signal.reason;
  }

  /** Created on first use: most calls never look at their signal. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      const controller = new AbortController();
      this.#controller = controller;
      if (this.#cancelKind !== undefined) controller.abort(cancelReason(this.#cancelKind));
      const context = this;
      const signal = controller.signal;
      Object.defineProperty(signal, 'aborted', {
        get() {
          void context.cancellationRequested;
          return controller.signal.reason !== undefined;
        },
      });
      Object.defineProperty(signal, 'throwIfAborted', {
        value() {
          if (context.cancellationRequested) throw controller.signal.reason;
        },
      });
    }
    return this.#controller.signal;
  }

  /** Called on a cancel message, or when polling noticed the shared flag. */
  cancel(kind: CancelKind): void {
    if (this.#cancelKind !== undefined) return;
    this.#cancelKind = kind;
    this.#controller?.abort(cancelReason(kind));
  }

  get cancelled(): boolean {
    return this.#cancelKind !== undefined;
  }

  writeWarning(message: string): void {
    this.#post({ stream: 'warning', message: String(message), runspaceId: this.runspaceId, time: Date.now() });
  }

  writeVerbose(message: string): void {
    this.#post({ stream: 'verbose', message: String(message), runspaceId: this.runspaceId, time: Date.now() });
  }

  writeDebug(message: string): void {
    this.#post({ stream: 'debug', message: String(message), runspaceId: this.runspaceId, time: Date.now() });
  }

  writeInformation(data: unknown, tags: readonly string[] = []): void {
    this.#post({ stream: 'information', data, tags: [...tags], runspaceId: this.runspaceId, time: Date.now() });
  }

  writeError(error: unknown): void {
    this.#post({ stream: 'error', error: serializeError(error), runspaceId: this.runspaceId, time: Date.now() });
  }

  writeProgress(progress: ProgressInfo): void {
    this.#post({ stream: 'progress', progress: { ...progress }, runspaceId: this.runspaceId, time: Date.now() });
  }

  writeOutput(value: unknown): void {
    this.#post({ stream: 'output', data: value, runspaceId: this.runspaceId, time: Date.now() });
  }

  #post(record: WireRecord): void {
    this.host.postRecord(this.seq, this.index === undefined ? record : { ...record, index: this.index });
  }
}
