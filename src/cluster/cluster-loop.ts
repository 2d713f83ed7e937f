/**
 * A parallel loop on a cluster: the input read lazily, cut into chunks,
 * each chunk one job that some node runs on its own pool. The options mean
 * what a local loop's mean, so code moves by changing how the pool is
 * opened: `throttleLimit` bounds the items running at once across every
 * node, `highWaterMark` the items queued in Redis, running, or waiting for
 * the consumer, whatever the input's length.
 *
 * The two become a number of chunks in flight, `k = highWaterMark /
 * chunkSize` (at least 1, at most `throttleLimit`), each running at most
 * `throttleLimit / k` of its items at once on its node: never more than
 * `throttleLimit` in all, spread over as many nodes as `k` allows.
 *
 * Every item ends exactly once at the caller, as an output or an error: a
 * chunk's result is taken once (the job completes once), and a chunk whose
 * node was lost twice fails its items with `ClusterNodeLostError`.
 *
 * @module
 */

import { randomUUID } from 'node:crypto';
import { ClusterUnavailableError, InvalidArgumentError, InvalidOperationError, OperationCancelledError, ParallelItemError, ParallelLoopError, TimeoutError } from '../errors.js';
import type { ModuleFunction } from '../pool/invocation.js';
import { isValidCount } from '../pool/options.js';
import { deserializeError } from '../protocol/error-codec.js';
import type { StreamRecord } from '../protocol/stream-records.js';
import type { ProgressRecord } from '../parallel/options.js';
import { onCancel, timeoutMs } from '../util/deadline.js';
import { abortSignalOption, readOptions } from '../util/options.js';
import { assertCrossable, pack, unpack, type ChunkJob, type ChunkResult, type ClusterJob, type WireFunction } from './wire.js';

/** Options of `cluster.forEachParallel`. */
export interface ClusterLoopOptions<U = Readonly<Record<string, unknown>>> {
  /** Values the function reads as `ctx.using`, sent once per chunk. */
  readonly using?: U;
  /** Items per job. Default 64: a job costs Redis a few round trips, so chunks should hold many quick items or a few slow ones. */
  readonly chunkSize?: number;
  /** Most items running at once across the cluster, as a local loop's. Default: as many as the nodes' runspaces take. */
  readonly throttleLimit?: number;
  /**
   * Most items queued in Redis, running, or held for a consumer that is not
   * reading, as a local loop's bound. Default 1024 (16 chunks of 64).
   */
  readonly highWaterMark?: number;
  /** Each item in a runspace opened for it alone on its node, as a local loop's. Default false. */
  readonly useNewRunspace?: boolean;
  /** The file a script block's relative `import()` resolves against, under the module root (default: the file that defined it). */
  readonly baseUrl?: string | URL;
  /** Deliver outputs in input order. Default false: chunk completion order. */
  readonly ordered?: boolean;
  /** Milliseconds for the whole loop; then its items are cancelled on their nodes and it throws `TimeoutError`. */
  readonly timeout?: number;
  /** Stops the loop as `timeout` does, with `OperationCancelledError`. */
  readonly signal?: AbortSignal;
  /** As a local loop's: not given, failures end the loop with `ParallelLoopError` after every output; `'continue'` never throws for them; `'stop'` throws the first. */
  readonly errorAction?: 'continue' | 'stop';
  /** Every stream record the items write on their nodes (warnings, verbose, progress...), tagged with the item's `index`, as they run (gathered for up to 50 ms on the way). */
  readonly onRecord?: (record: StreamRecord) => void;
  /** Progress records (`ctx.writeProgress`) only. */
  readonly onProgress?: (record: ProgressRecord) => void;
}

/** What a job's submitter is told before its result. */
export interface JobHooks {
  /** A node took the job. */
  readonly onActive?: (() => void) | undefined;
  /** The job wrote records (`index` counted from its chunk's first item). */
  readonly onRecords?: ((records: readonly StreamRecord[]) => void) | undefined;
}

/** What loops and thread jobs need from their cluster pool. */
export interface ClusterHost {
  /** Queues a job and resolves with its packed result. */
  submit(job: ClusterJob, jobId: string, hooks?: JobHooks): Promise<string>;
  cancel(id: string, jobIds: readonly string[]): void;
  /** True once the pool was closed: nothing more can be queued. */
  isClosed(): boolean;
  wireFunction(fn: Function | ModuleFunction, baseUrl?: unknown): WireFunction;
}

interface Settled {
  readonly chunk: number;
  readonly first: number;
  readonly count: number;
  readonly result?: ChunkResult;
  readonly error?: unknown;
}

/**
 * A running cluster loop: iterate it (`for await`) for outputs as they
 * arrive, or await it for all of them.
 *
 * @example
 * ```ts
 * const loop = cluster.forEachParallel(urls, async (url: string) => (await fetch(url)).status, { chunkSize: 8 });
 * for await (const status of loop) console.log(status);
 * ```
 */
export class ClusterLoop<R> implements AsyncIterable<R>, PromiseLike<R[]> {
  readonly #host: ClusterHost;
  readonly #input: Iterable<unknown> | AsyncIterable<unknown>;
  readonly #fn: WireFunction;
  readonly #using: string | undefined;
  readonly #chunkSize: number;
  /** Chunks queued or running at once. */
  readonly #chunksInFlight: number;
  /** Items of one chunk running at once on its node; undefined: as many as its runspaces. */
  readonly #throttlePerChunk: number | undefined;
  readonly #useNewRunspace: boolean;
  readonly #ordered: boolean;
  readonly #timeout: number | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #errorAction: 'continue' | 'stop' | undefined;
  readonly #errors: ParallelItemError[] = [];
  readonly #onRecord: ((record: StreamRecord) => void) | undefined;
  readonly #onProgress: ((record: ProgressRecord) => void) | undefined;
  #completed = 0;
  #started = false;
  #all: Promise<R[]> | undefined;

  /** @internal Loops come from `cluster.forEachParallel`. */
  constructor(host: ClusterHost, input: Iterable<unknown> | AsyncIterable<unknown>, fn: Function | ModuleFunction, options: ClusterLoopOptions) {
    const read = readOptions(options, ['using', 'chunkSize', 'throttleLimit', 'highWaterMark', 'ordered', 'useNewRunspace', 'timeout', 'signal', 'errorAction', 'onRecord', 'onProgress', 'baseUrl']) as ClusterLoopOptions;
    for (const name of ['onRecord', 'onProgress'] as const) {
      if (read[name] !== undefined && typeof read[name] !== 'function') throw new InvalidArgumentError(name, 'expected a function');
    }
    this.#onRecord = read.onRecord;
    this.#onProgress = read.onProgress;
    if (input === null || typeof input !== 'object' || (!(Symbol.iterator in input) && !(Symbol.asyncIterator in input))) {
      throw new InvalidArgumentError('input', 'expected an iterable or async iterable of items');
    }
    this.#host = host;
    this.#input = input;
    this.#fn = host.wireFunction(fn, read.baseUrl);
    if (read.using !== undefined) assertCrossable(read.using, 'using');
    this.#using = read.using === undefined ? undefined : pack(read.using);
    this.#chunkSize = positive('chunkSize', read.chunkSize ?? 64);
    const throttle = read.throttleLimit === undefined ? undefined : positive('throttleLimit', read.throttleLimit);
    const chunks = Math.max(1, Math.floor(positive('highWaterMark', read.highWaterMark ?? 1024) / this.#chunkSize));
    this.#chunksInFlight = throttle === undefined ? chunks : Math.min(chunks, throttle);
    this.#throttlePerChunk = throttle === undefined ? undefined : Math.floor(throttle / this.#chunksInFlight);
    if (read.useNewRunspace !== undefined && typeof read.useNewRunspace !== 'boolean') throw new InvalidArgumentError('useNewRunspace', 'expected true or false');
    this.#useNewRunspace = read.useNewRunspace === true;
    this.#ordered = read.ordered === true;
    this.#timeout = timeoutMs('timeout', read.timeout);
    this.#signal = abortSignalOption(read.signal);
    if (read.errorAction !== undefined && read.errorAction !== 'continue' && read.errorAction !== 'stop') {
      throw new InvalidArgumentError('errorAction', "expected 'continue' or 'stop'");
    }
    this.#errorAction = read.errorAction;
  }

  /** Items that failed so far, each a `ParallelItemError` with its `index`. */
  get errors(): readonly ParallelItemError[] {
    return this.#errors;
  }

  /** Items finished so far, failed or not. */
  get completed(): number {
    return this.#completed;
  }

  /** Every output, in input order when `ordered`. */
  toArray(): Promise<R[]> {
    return (this.#all ??= (async () => {
      const outputs: R[] = [];
      for await (const output of this) outputs.push(output);
      return outputs;
    })());
  }

  then<A = R[], B = never>(onFulfilled?: ((value: R[]) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.toArray().then(onFulfilled, onRejected);
  }

  [Symbol.asyncIterator](): AsyncIterator<R> {
    if (this.#started) throw new InvalidOperationError('A cluster loop runs once: iterate it or await it, once.');
    this.#started = true;
    return this.#run();
  }

  async *#run(): AsyncGenerator<R> {
    const id = randomUUID();
    const source = Symbol.asyncIterator in this.#input
      ? (this.#input as AsyncIterable<unknown>)[Symbol.asyncIterator]()
      : (this.#input as Iterable<unknown>)[Symbol.iterator]();
    const inFlight = new Map<number, Promise<Settled>>();
    const held = new Map<number, Settled>();
    let nextChunk = 0;
    let nextToDeliver = 0;
    let nextIndex = 0;
    let inputDone = false;
    let stopped: Error | undefined;
    const cleanups: (() => void)[] = [];
    const stopping = new Promise<never>((_, reject) => {
      const detach = onCancel(this.#signal, this.#timeout, (cause) => {
        stopped = cause.kind === 'abort' ? new OperationCancelledError(cause.reason, false) : new TimeoutError(this.#timeout ?? 0, false);
        reject(stopped);
      });
      // Detached when the loop ends, whichever way.
      cleanups.push(detach);
    });
    stopping.catch(() => undefined);
    try {
      for (;;) {
        // Chunks held for order count too: a slow first chunk must not let the rest pile up in memory.
        while (!inputDone && inFlight.size + held.size < this.#chunksInFlight) {
          // A closed pool ends the loop instead of reading (maybe endless) input only to fail it.
          if (this.#host.isClosed()) throw new ClusterUnavailableError(`The cluster pool was closed while the loop ran; items from index ${nextIndex} on were not read.`);
          const items: unknown[] = [];
          while (items.length < this.#chunkSize) {
            const step = await source.next();
            if (step.done === true) {
              inputDone = true;
              break;
            }
            assertCrossable(step.value, `input[${nextIndex + items.length}]`);
            items.push(step.value);
          }
          if (items.length === 0) break;
          const chunk = nextChunk++;
          const first = nextIndex;
          nextIndex += items.length;
          const job: ChunkJob = {
            kind: 'chunk', loop: id, fn: this.#fn, first, items: pack(items), using: this.#using,
            ...(this.#throttlePerChunk === undefined ? {} : { throttle: this.#throttlePerChunk }),
            ...(this.#useNewRunspace ? { useNewRunspace: true } : {}),
          };
          const onRecords = this.#onRecord === undefined && this.#onProgress === undefined ? undefined : (records: readonly StreamRecord[]) => this.#record(first, records);
          inFlight.set(chunk, this.#host.submit(job, `${id}-${chunk}`, { onRecords }).then(
            (packed) => ({ chunk, first, count: items.length, result: unpack<ChunkResult>(packed) }),
            (error: unknown) => ({ chunk, first, count: items.length, error }),
          ));
        }
        if (inFlight.size === 0) break;
        const settled = await Promise.race([...inFlight.values(), stopping]);
        inFlight.delete(settled.chunk);
        if (!this.#ordered) {
          yield* this.#deliver(settled);
          continue;
        }
        held.set(settled.chunk, settled);
        for (let ready = held.get(nextToDeliver); ready !== undefined; ready = held.get(nextToDeliver)) {
          held.delete(nextToDeliver++);
          yield* this.#deliver(ready);
        }
      }
      if (stopped !== undefined) throw stopped;
      if (this.#errors.length > 0 && this.#errorAction === undefined) throw new ParallelLoopError(this.#errors, this.#completed);
    } finally {
      for (const cleanup of cleanups) cleanup();
      // Ended early (an error, a timeout, a consumer that stopped reading): nothing of it keeps running.
      if (inFlight.size > 0) this.#host.cancel(id, [...inFlight.keys()].map((chunk) => `${id}-${chunk}`));
      await (source as { return?: () => unknown }).return?.();
    }
  }

  #record(first: number, records: readonly StreamRecord[]): void {
    for (const record of records) {
      const tagged = { ...record, index: first + (record.index ?? 0) } as StreamRecord;
      this.#onRecord?.(tagged);
      if (tagged.stream === 'progress') this.#onProgress?.(tagged as ProgressRecord);
    }
  }

  *#deliver(settled: Settled): Generator<R> {
    const { first, count, result, error } = settled;
    const failures = new Map(result?.failures);
    for (let i = 0; i < count; i++) {
      this.#completed++;
      const failure = error ?? failures.get(i);
      if (failure === undefined) {
        yield result!.values[i] as R;
        continue;
      }
      const itemError = new ParallelItemError(first + i, { cause: error === undefined ? deserializeError(failure as never) : error });
      this.#errors.push(itemError);
      if (this.#errorAction === 'stop') throw itemError;
    }
  }
}

function positive(name: string, value: unknown): number {
  if (!isValidCount(value, 1)) throw new InvalidArgumentError(name, 'expected an integer >= 1');
  return value;
}
