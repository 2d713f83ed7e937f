/**
 * The engine of a parallel loop: takes items from the input, sends them to
 * runspaces in chunks, and turns what comes back into outputs, failures and
 * stream records for a {@link LoopSink} (the async iterator, or a job).
 *
 * Throttling: the loop has `throttleLimit` lanes. A lane holds one chunk
 * running in some runspace and, once items are known to be quick and while
 * plenty of input is left, one more chunk queued right behind it there, so
 * that runspace never waits for the main thread. Slow items, items whose
 * cost is not known yet, and the last of a known input go one chunk per
 * lane: each starts on the next free runspace, in input order, as
 * PowerShell starts queued items. A lane never spans two runspaces at once,
 * so at most `throttleLimit` items run at any moment.
 *
 * Back-pressure: new input is taken only while the outputs held for the
 * consumer plus the items in flight stay within `highWaterMark` plus one
 * item per lane, and a chunk never holds more than its lane's share of that,
 * so memory stays bounded however long the input and however large each
 * output.
 *
 * Faults: a runspace that dies fails the items of its chunk that had started
 * (their outputs died with it) and hands the others to another runspace. A
 * chunk that cannot be cloned is split so only the offending items fail.
 *
 * @module
 */

import {
  InvalidArgumentError,
  OperationCancelledError,
  ParallelItemError,
  RunspaceBrokenError,
  TimeoutError,
} from '../errors.js';
import { deserializeError } from '../protocol/error-codec.js';
import type { ChunkOutcome } from '../protocol/messages.js';
import type { StreamRecord } from '../protocol/stream-records.js';
import { CostEstimate } from '../pool/batching.js';
import { Fifo } from '../util/fifo.js';
import { buildTaskSpec, type ModuleFunction } from '../pool/invocation.js';
import { mapScriptStacks } from '../pool/script-registry.js';
import type { LoopPool } from '../pool/loop-pool.js';
import type { TaskSpec, TaskView } from '../pool/task.js';
import { onCancel, type CancelCause } from '../util/deadline.js';
import { asArgumentError } from '../util/options.js';
import { ChunkSizer } from './chunk-sizer.js';
import { InputSource, type LoopInput } from './input-source.js';
import type { NormalizedLoopOptions } from './options.js';

/** Where a loop's results go. */
export interface LoopSink {
  /** Items `first ..< first + count` were sent to a runspace. */
  sent(first: number, count: number): void;
  /**
   * Item `index` began running. Only for sinks that have it: each start is
   * a message from the runspace.
   */
  itemStarted?(index: number): void;
  /**
   * Outcome of items `first ..< first + length`: `values[i]` is item
   * `first + i`'s output unless `failed` holds `i`; positions past
   * `values.length` never ran.
   */
  delivered(first: number, values: readonly unknown[], failed: ReadonlySet<number> | undefined, length: number): void;
  /** An item failed (its position in `delivered` is marked failed too). */
  failed(error: ParallelItemError, runspaceId: number): void;
  /** A stream record an item wrote. */
  record(record: StreamRecord): void;
  /** Outputs held and not yet consumed. */
  readonly backlog: number;
  /** The loop is over: every item finished, or it stopped with `error`. */
  finished(error: unknown): void;
}

interface Chunk {
  readonly first: number;
  readonly items: readonly unknown[];
  readonly task: TaskView;
  /** Items whose outcomes already arrived in parts, ahead of the chunk's result (a prefix). */
  delivered: number;
}

interface Lane {
  readonly chunks: Chunk[];
}

let nextUsingId = 1;

/** Chunks a lane holds at once: one running, one queued right behind it in the same runspace. */
const PIPELINE_DEPTH = 2;
/** Items this slow gain nothing from a chunk queued ahead of time: each starts on the next free runspace. */
const SLOW_ITEM_NS = 20_000_000;

export class LoopEngine {
  readonly #pool: LoopPool;
  readonly #sink: LoopSink;
  readonly #options: NormalizedLoopOptions;
  readonly #source: InputSource<unknown>;
  readonly #sizer = new ChunkSizer();
  readonly #base: TaskSpec;
  readonly #cost = new CostEstimate();
  readonly #usingId: number | undefined;
  readonly #lanes: Lane[];
  /** Items to run again (a dead runspace's unstarted items), before new input. */
  readonly #retry = new Fifo<{ first: number; items: readonly unknown[] }>();
  readonly #abort = new AbortController();
  #nextIndex = 0;
  #inFlightItems = 0;
  #inFlightChunks = 0;
  #stopping = false;
  #stopError: unknown;
  #done = false;
  #pumpScheduled = false;
  #paused = false;
  #detachCancel: (() => void) | undefined;
  /** Settles once every chunk is back and the sink was told the loop finished. */
  readonly settled: Promise<void>;
  #settle!: () => void;

  constructor(
    pool: LoopPool,
    input: LoopInput<unknown>,
    fn: Function | ModuleFunction,
    options: NormalizedLoopOptions,
    sink: LoopSink,
  ) {
    this.#pool = pool;
    this.#sink = sink;
    this.#options = options;
    pool.assertAccepting('run a parallel loop');
    try {
      this.#source = new InputSource(input);
    } catch (error) {
      throw asArgumentError(error, 'input');
    }
    if (typeof fn !== 'function' && (fn === null || typeof fn !== 'object')) {
      throw new InvalidArgumentError('fn', 'expected a function (item, ctx) => ... or { module, export }');
    }
    try {
      this.#base = buildTaskSpec(fn, {
        using: options.using,
        baseUrl: options.baseUrl,
        onRecord: (record) => sink.record(record),
      });
    } catch (error) {
      throw asArgumentError(error, 'fn');
    }
    this.#usingId = options.using === undefined ? undefined : nextUsingId++;
    this.#lanes = Array.from({ length: options.throttleLimit }, () => ({ chunks: [] }));
    this.settled = new Promise((resolve) => {
      this.#settle = resolve;
    });
    this.#source.onAvailable = () => this.#schedulePump();
    this.#detachCancel = onCancel(options.signal, options.timeout, (cause: CancelCause) => {
      this.stop(cause.kind === 'abort' ? new OperationCancelledError(cause.reason, false) : new TimeoutError(cause.ms, false));
    });
    this.#schedulePump();
  }

  /** Items handed out so far. */
  get itemsStarted(): number {
    return this.#nextIndex;
  }

  /**
   * Stops the loop: remaining input is not started, running items are
   * cancelled (their `ctx.signal` fires), outputs already produced are still
   * delivered. The sink's `finished` gets `error` (undefined: a clean stop).
   */
  stop(error?: unknown): void {
    if (this.#stopping || this.#done) return;
    this.#stopping = true;
    this.#stopError = error;
    this.#source.close();
    this.#retry.drain();
    this.#abort.abort();
    this.#maybeFinish();
  }

  /** The consumer took outputs: resume taking input if back-pressure had paused it. */
  consumed(): void {
    if (this.#paused && this.#hasRoom()) this.#schedulePump();
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    // A macrotask, not a microtask: an async input resolving many items in a
    // row is then sent as one chunk, not one item per chunk.
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /**
   * Items that may still be taken: outputs held for the consumer plus items
   * in flight stay within `highWaterMark` plus one item per lane (so every
   * lane can work even with `highWaterMark: 1`), whatever the chunk size.
   */
  #room(): number {
    return this.#options.highWaterMark + this.#lanes.length - (this.#sink.backlog + this.#inFlightItems);
  }

  #hasRoom(): boolean {
    return this.#room() > 0;
  }

  /** Most items per chunk: the outstanding allowance split over every chunk the lanes may hold, so all lanes work. */
  get #laneShare(): number {
    return Math.max(1, Math.floor((this.#options.highWaterMark + this.#lanes.length) / (this.#lanes.length * PIPELINE_DEPTH)));
  }

  #pump(): void {
    if (this.#stopping || this.#done) return;
    this.#paused = false;
    const depth = this.#pipelines() ? PIPELINE_DEPTH : 1;
    for (const lane of this.#lanes) {
      while (lane.chunks.length < depth) {
        let behind: TaskView | undefined;
        if (lane.chunks.length === 1) {
          behind = lane.chunks[0]!.task;
          if (!behind.dispatched) break;
        }
        const next = this.#takeItems();
        if (next === undefined) break;
        if (!this.#send(lane, next.first, next.items, behind)) break;
        if (this.#stopping) return;
      }
    }
    if (this.#source.failed) this.stop(this.#source.error);
    this.#maybeFinish();
  }

  /**
   * True when a lane should queue a second chunk behind its running one. It
   * saves the main thread's round trip between chunks (a tenth of the time
   * of ~1 ms items), but a chunk queued behind a busy runspace cannot start
   * on one that frees up first: so only once items are known to be quick
   * (under {@link SLOW_ITEM_NS}), and not when what is left of a known input
   * would fit in one chunk per lane anyway.
   */
  #pipelines(): boolean {
    const itemNs = this.#sizer.itemNs;
    if (this.#options.useNewRunspace || itemNs === undefined || itemNs >= SLOW_ITEM_NS) return false;
    const left = this.#source.remainingKnown;
    return left === undefined || left > this.#lanes.length * this.#sizer.next(this.#lanes.length, left);
  }

  /** The next items to send: items to retry first, then new input while there is room. */
  #takeItems(): { first: number; items: readonly unknown[] } | undefined {
    const retry = this.#retry.shift();
    if (retry !== undefined) return retry;
    if (this.#source.exhausted) return undefined;
    if (!this.#hasRoom()) {
      this.#paused = true;
      return undefined;
    }
    const size = this.#options.useNewRunspace ? 1 : Math.min(this.#room(), this.#laneShare, this.#sizer.next(this.#lanes.length, this.#source.remainingKnown));
    const items = this.#source.take(size);
    if (items.length === 0) return undefined;
    const first = this.#nextIndex;
    this.#nextIndex += items.length;
    return { first, items };
  }

  /** Sends a chunk on `lane`; false when it went back to the retry line instead. */
  #send(lane: Lane, first: number, items: readonly unknown[], behind: TaskView | undefined): boolean {
    const spec: TaskSpec = {
      ...this.#base,
      cost: this.#cost,
      chunk: { items, firstIndex: first, stopOnError: this.#options.errorAction === 'stop', reportStarts: this.#sink.itemStarted !== undefined },
      usingId: this.#usingId,
      keepResultWhenCancelled: true,
      onPartial: (outcome) => this.#partDone(chunk, outcome),
      onItemStarted: this.#sink.itemStarted === undefined ? undefined : (index) => this.#sink.itemStarted!(index),
    };
    // Assigned once the chunk is submitted; parts arrive only after that.
    let chunk!: Chunk;
    const submitOptions = { signal: this.#abort.signal };
    let task: TaskView | undefined;
    try {
      if (behind !== undefined) task = this.#pool.submitBehind(behind, spec, submitOptions);
      else if (this.#options.useNewRunspace) task = this.#pool.submitFresh(spec, submitOptions);
      else task = this.#pool.submit(spec, submitOptions);
    } catch (error) {
      // The pool closed or broke under the loop.
      this.#retry.push({ first, items });
      this.stop(error);
      return false;
    }
    if (task === undefined) {
      this.#retry.push({ first, items });
      return false;
    }
    chunk = { first, items, task, delivered: 0 };
    lane.chunks.push(chunk);
    this.#inFlightItems += items.length;
    this.#inFlightChunks++;
    this.#sink.sent(first, items.length);
    task.promise.then(
      (outcome) => this.#chunkDone(lane, chunk, outcome as ChunkOutcome),
      (error: unknown) => this.#chunkFailed(lane, chunk, error),
    );
    return true;
  }

  #release(lane: Lane, chunk: Chunk): void {
    const at = lane.chunks.indexOf(chunk);
    if (at >= 0) lane.chunks.splice(at, 1);
    this.#inFlightItems -= chunk.items.length - chunk.delivered;
    this.#inFlightChunks--;
  }

  /** The first items of a long chunk finished: their outputs go out now, and no death can take them back. */
  #partDone(chunk: Chunk, outcome: ChunkOutcome): void {
    if (this.#done) return;
    const count = outcome.values.length;
    chunk.delivered = outcome.from + count;
    this.#inFlightItems -= count;
    this.#deliver(chunk, outcome, count);
    if (!this.#stopping) this.#schedulePump();
  }

  #chunkDone(lane: Lane, chunk: Chunk, outcome: ChunkOutcome): void {
    this.#release(lane, chunk);
    this.#deliver(chunk, outcome, chunk.items.length - outcome.from);
    this.#afterChunk();
  }

  /** Delivers the outcomes of items `outcome.from ..< outcome.from + length` of a chunk (past the values: never ran). */
  #deliver(chunk: Chunk, outcome: ChunkOutcome, length: number): void {
    this.#sizer.record(outcome.done, outcome.runNs);
    const first = chunk.first + outcome.from;
    let failed: Set<number> | undefined;
    let firstFailure: ParallelItemError | undefined;
    const runspaceId = chunk.task.runspaceId ?? 0;
    if (outcome.failures.length > 0) {
      failed = new Set();
      for (const [position, encoded] of outcome.failures) {
        failed.add(position);
        const cause = deserializeError(encoded);
        mapScriptStacks(cause);
        const error = new ParallelItemError(first + position, { cause });
        firstFailure ??= error;
        this.#sink.failed(error, runspaceId);
      }
    }
    this.#sink.delivered(first, outcome.values, failed, length);
    if (firstFailure !== undefined && this.#options.errorAction === 'stop') this.stop(firstFailure);
  }

  #chunkFailed(lane: Lane, chunk: Chunk, error: unknown): void {
    this.#release(lane, chunk);
    const { items, task, delivered } = chunk;
    // Items whose outcomes arrived in parts are done; only the rest are at stake.
    const first = chunk.first + delivered;
    const rest = delivered === 0 ? items : items.slice(delivered);
    if (error instanceof RunspaceBrokenError) {
      this.#chunkLost(first, rest, Math.min(task.itemsStarted, items.length) - delivered, task.lostWhileRunning, error);
    } else if (task.uncloneableItem !== undefined) {
      // That item fails alone; the others of the chunk go again (a later one may be refused in turn).
      const bad = task.uncloneableItem - delivered;
      this.#failRange(first + bad, 1, error, 0);
      this.#runAgain(first, rest, 0, bad);
      this.#runAgain(first, rest, bad + 1, rest.length);
    } else if (!(error instanceof OperationCancelledError || error instanceof TimeoutError) || !this.#stopping) {
      // Not a per-item problem (the function does not compile, `using` cannot
      // be cloned, the pool closed): every item would fail the same way.
      this.#sink.delivered(first, [], undefined, rest.length);
      this.stop(error);
    } else {
      this.#sink.delivered(first, [], undefined, rest.length);
    }
    this.#afterChunk();
  }

  /**
   * A chunk's runspace died with `started` of the `items` still at stake
   * begun. The item it was running fails with the runspace's error (its
   * outcome is unknown); the items before it finished, but their outputs
   * died with the runspace (at most the last millisecond's worth: the rest
   * arrived in parts), so they run again elsewhere, as do the items never
   * started. A stopping loop runs nothing again: those items never ran.
   */
  #chunkLost(first: number, items: readonly unknown[], started: number, running: boolean, error: RunspaceBrokenError): void {
    const failing = running && started > 0 ? started - 1 : -1;
    if (failing >= 0) this.#failRange(first + failing, 1, error, error.runspaceId);
    if (failing >= 0) {
      this.#runAgain(first, items, 0, failing);
      this.#runAgain(first, items, failing + 1, items.length);
    } else {
      this.#runAgain(first, items, 0, items.length);
    }
  }

  /** Items `from ..< to` of a chunk starting at `first` go back in line (or, when stopping, are reported as never run). */
  #runAgain(first: number, items: readonly unknown[], from: number, to: number): void {
    if (to <= from) return;
    if (this.#stopping) this.#sink.delivered(first + from, [], undefined, to - from);
    else this.#retry.push({ first: first + from, items: items.slice(from, to) });
  }

  #failRange(first: number, count: number, cause: unknown, runspaceId: number): void {
    if (count === 0) return;
    const failed = new Set<number>();
    const values: unknown[] = [];
    let firstFailure: ParallelItemError | undefined;
    for (let i = 0; i < count; i++) {
      failed.add(i);
      values.push(undefined);
      const error = new ParallelItemError(first + i, { cause });
      firstFailure ??= error;
      this.#sink.failed(error, runspaceId);
    }
    this.#sink.delivered(first, values, failed, count);
    if (firstFailure !== undefined && this.#options.errorAction === 'stop') this.stop(firstFailure);
  }

  #afterChunk(): void {
    if (this.#stopping) this.#maybeFinish();
    else this.#pump();
  }

  #maybeFinish(): void {
    if (this.#done || this.#inFlightChunks > 0) return;
    if (!this.#stopping) {
      if (this.#retry.length > 0 || !this.#source.exhausted) return;
      if (this.#source.failed) {
        this.#stopping = true;
        this.#stopError = this.#source.error;
      }
    }
    this.#done = true;
    this.#detachCancel?.();
    if (this.#usingId !== undefined) this.#pool.forgetUsing(this.#usingId);
    this.#sink.finished(this.#stopError);
    this.#settle();
  }
}
