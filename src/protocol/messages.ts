/**
 * Everything that crosses the boundary between the pool (main side) and a
 * runspace (worker side). Read this file alone to know all a runspace can be
 * asked to do, and all it can say back.
 *
 * Main → runspace: `run` (a batch of tasks), `cancel` (one task), `forget`
 * (drop a cached `using` value), `forget-scripts` (drop compiled script blocks). Calls on objects with runspace affinity
 * travel on a second channel, listed in affinity-messages.ts.
 * Runspace → main: `ready` (open finished), `results` (a batch of outcomes,
 * always in the order the tasks were sent), `record` (a stream record written
 * by a running task), `partial` (outputs of a long chunk's first items),
 * `item-started` (an item of a chunk that asked for it began),
 * `released` (sync primitives it no longer holds).
 *
 * Besides messages, each runspace shares a small `Int32Array` control block
 * with the pool (see {@link ControlSlot}); it carries what must be visible
 * without a message: which task the runspace last started (so a death can be
 * attributed exactly) and which tasks were asked to cancel (so a synchronous
 * loop can poll it without yielding to the event loop, and a cancelled task
 * queued behind it is skipped even before its cancel message is read).
 *
 * @module
 */

import type { MessagePort } from 'node:worker_threads';
import type { SerializedError } from './error-codec.js';
import type { WireRecord } from './stream-records.js';

/** Slots of the shared control block, one `Int32Array` per runspace. */
export const enum ControlSlot {
  /** Written by the runspace: sequence number of the task it last started. */
  Started = 0,
  /**
   * Written by the runspace: how many items of its current chunk it has
   * started (0 for a task that is not a chunk). A death mid-chunk fails the
   * items started and hands the rest back.
   */
  ItemsStarted = 1,
  /**
   * First of {@link CANCEL_RING} slots written by the pool: a task asked to
   * cancel has its sequence number stored at `CancelRing + seq % CANCEL_RING`.
   * A ring, not one slot, so cancelling a queued task never hides the running
   * task's cancellation; two cancelled tasks in flight on one runspace share
   * a slot only when they are `CANCEL_RING` sequence numbers apart, and then
   * the cancel message still reaches the older one.
   */
  CancelRing = 2,
}
export const CANCEL_RING = 128;
export const CONTROL_SLOTS = 2 + CANCEL_RING;

/** Where the cancel flag of task `seq` lives in the control block. */
export function cancelSlot(seq: number): number {
  return ControlSlot.CancelRing + (seq % CANCEL_RING);
}

/**
 * What the pool writes in task `seq`'s cancel slot to take it back before it
 * starts (a runspace stuck on the call before it): the runspace skips it,
 * and a task already running never reads it as a cancellation.
 */
export function reclaimMark(seq: number): number {
  return -seq - 1;
}

/** A script block the runspace has not seen yet: its source and where it came from. */
export interface ScriptDefinition {
  readonly id: number;
  readonly source: string;
  /** URL of the file relative `import()` resolves against, when known. */
  readonly base: string | null;
}

/** What a task runs. */
export type FunctionRef =
  | { readonly kind: 'script'; readonly id: number; readonly definition?: ScriptDefinition }
  /** `withContext: false`: called without `ctx` (`fn(...args)`, `fn(item)`), as a piscina worker's export is. */
  | { readonly kind: 'module'; readonly module: string; readonly export: string; readonly withContext?: false }
  | { readonly kind: 'getVariable'; readonly name: string }
  | { readonly kind: 'setVariable'; readonly name: string; readonly value: unknown };

export interface WireTask {
  /** Per-runspace sequence number, increasing in send order. */
  readonly seq: number;
  readonly fn: FunctionRef;
  readonly args: readonly unknown[];
  readonly using: Readonly<Record<string, unknown>> | undefined;
  /**
   * A `using` value the runspace keeps under this id until told to forget it,
   * so a loop's `using` crosses once per runspace, not once per chunk. When
   * `using` is undefined, the runspace already has it.
   */
  readonly usingId?: number;
  /** Present for a chunk of a parallel loop: `fn(item, ctx)` runs once per item. */
  readonly chunk?: WireChunk;
  /** A thread job's input objects, read as `ctx.input`. */
  readonly input?: readonly unknown[];
  /** True when the task's values copy classes the runspace may have to import before it decodes them. */
  readonly loadsClasses?: boolean;
}

/** Items of a parallel loop sent as one task. */
export interface WireChunk {
  readonly items: readonly unknown[];
  /** Loop index of `items[0]`; items are consecutive. */
  readonly firstIndex: number;
  /** Stop at the first failing item (`errorAction: 'stop'`). */
  readonly stopOnError: boolean;
  /**
   * Say when each item starts (`item-started`): a loop run as a job shows
   * each item's child job `NotStarted` until then. A message per item, so
   * only loops that show it ask.
   */
  readonly reportStarts?: boolean;
}

/**
 * Outcomes of consecutive items of a chunk, from position `from`:
 * `values[i]` is the output of `items[from + i]` unless `i` is listed in
 * `failures`. A chunk that runs long sends its outcomes in several parts
 * (`partial` messages, then its result), so a runspace that dies mid-chunk
 * loses only the outputs of its last moments. The result holds the last
 * part; positions past it never ran: a chunk stops early when cancelled or,
 * under `stopOnError`, at its first failure.
 */
export interface ChunkOutcome {
  /** Position in the chunk of `values[0]`. */
  readonly from: number;
  readonly values: readonly unknown[];
  readonly failures: readonly (readonly [position: number, error: SerializedError])[];
  readonly done: number;
  /** Nanoseconds the items took, to size the next chunks. */
  readonly runNs: number;
}

export type CancelKind = 'abort' | 'timeout';

export type ToRunspace =
  | { readonly type: 'run'; readonly tasks: readonly WireTask[] }
  | { readonly type: 'cancel'; readonly seq: number; readonly kind: CancelKind }
  | { readonly type: 'forget'; readonly usingId: number }
  /** Drop these compiled script blocks; a task that names one again brings its source. */
  | { readonly type: 'forget-scripts'; readonly ids: readonly number[] };

export type WireResult =
  | { readonly seq: number; readonly ok: true; readonly value: unknown; readonly runNs: number; readonly loadsClasses?: boolean }
  | { readonly seq: number; readonly ok: false; readonly error: SerializedError; readonly runNs: number; readonly cancelled?: boolean; readonly reclaimed?: boolean };

export type FromRunspace =
  | { readonly type: 'ready'; readonly openErrors: readonly SerializedError[] }
  | { readonly type: 'results'; readonly results: readonly WireResult[] }
  | { readonly type: 'record'; readonly seq: number; readonly record: WireRecord }
  /** Outcomes of a running chunk's first items so far (see {@link ChunkOutcome}); never copies classes. */
  | { readonly type: 'partial'; readonly seq: number; readonly outcome: ChunkOutcome }
  /** Item `index` (a loop index) of the chunk sent as task `seq` began (see {@link WireChunk.reportStarts}). */
  | { readonly type: 'item-started'; readonly seq: number; readonly index: number }
  /** Unnamed sync primitives this runspace no longer holds: `[cell id, copies it had received]` (see shared-cells.ts). */
  | { readonly type: 'released'; readonly cells: readonly (readonly [number, number])[] };

/** What a runspace is given when it starts (its `workerData`). */
export interface RunspaceBoot {
  readonly control: SharedArrayBuffer;
  readonly variables: Readonly<Record<string, unknown>>;
  readonly modules: readonly string[];
  readonly startup: readonly ScriptDefinition[];
  /** Microseconds a runspace polls for more work before it sleeps. */
  readonly spinBeforeSleepUs: number;
  /** Calls the runspace may run at once (the pool's `concurrency`). */
  readonly concurrency: number;
  /** The process's spin gate: whether polling is allowed now (see spin-gate.ts). */
  readonly spinGate: SharedArrayBuffer;
  /** What crossing does with instances of undecorated classes (see affinity/class-instances.ts). */
  readonly classInstances: 'refuse' | 'plain';
  /** The process's arena of named synchronization objects. */
  readonly syncArena: SharedArrayBuffer;
  /** The runspace's end of its affinity link (see affinity-messages.ts). */
  readonly affinityPort: MessagePort;
}
