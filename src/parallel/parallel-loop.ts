/**
 * `forEachParallel` as an async iterable: PowerShell's `ForEach-Object
 * -Parallel` for Node.
 *
 * @module
 */

import { InvalidOperationError, ParallelLoopError, type ParallelItemError } from '../errors.js';
import type { ModuleFunction } from '../pool/invocation.js';
import type { LoopPool } from '../pool/loop-pool.js';
import type { StreamRecord } from '../protocol/stream-records.js';
import type { LoopInput } from './input-source.js';
import { LoopEngine, type LoopSink } from './loop-engine.js';
import type { NormalizedLoopOptions } from './options.js';
import { ResultBuffer } from './result-buffer.js';
import { routeRecord } from './record-routing.js';

/**
 * A running parallel loop. Iterate it once (`for await`) to receive outputs
 * as items finish (or in input order with `ordered: true`), or collect them
 * with `await loop` (or `toArray()`).
 *
 * Items that fail do not produce outputs; they are collected in `errors`
 * (and reported as error records) and the loop goes on. By default, once
 * every output was delivered, iteration ends by throwing
 * `ParallelLoopError` with every failure, so a failing loop is never
 * silent; with `errorAction: 'continue'` it just ends (read `errors`);
 * with `'stop'`, the first failure ends it, thrown.
 * A loop stopped by its `timeout` or `signal` delivers the outputs produced
 * so far, then throws `TimeoutError` or `OperationCancelledError`. Leaving
 * the loop early (`break`) cancels the items still running.
 *
 * @example
 * ```ts
 * const loop = pool.forEachParallel(files, async (file, ctx) => (await import('./images.js')).resize(file, ctx.using.width), {
 *   using: { width: 640 }, throttleLimit: 4,
 * });
 * for await (const size of loop) {
 *   total += size;
 *   console.log(`${loop.completed} of ${files.length}`);
 * }
 * ```
 */
export class ParallelLoop<R> implements AsyncIterable<R>, AsyncIterator<R>, PromiseLike<R[]> {
  readonly #buffer: ResultBuffer;
  readonly #errors: ParallelItemError[] = [];
  readonly #emitRecord: (record: StreamRecord) => void;
  readonly #engine: LoopEngine;
  #finished = false;
  #error: unknown;
  #errorThrown = false;
  #iterated = false;
  #completed = 0;
  #wake: (() => void) | undefined;
  #collected: Promise<R[]> | undefined;

  /** @internal Loops come from `pool.forEachParallel()` or `parallel()`. */
  constructor(
    pool: LoopPool,
    input: LoopInput<unknown>,
    fn: Function | ModuleFunction,
    options: NormalizedLoopOptions,
    poolRecord: (record: StreamRecord) => void,
  ) {
    this.#buffer = new ResultBuffer(options.ordered);
    this.#emitRecord = (record) => routeRecord(record, options, poolRecord);
    const buffer = this.#buffer;
    const sink: LoopSink = {
      sent: () => {},
      delivered: (first, values, failed, length) => {
        this.#completed += Math.min(values.length, length);
        this.#buffer.add(first, values, failed, length);
        this.#wakeConsumer();
      },
      failed: (error, runspaceId) => {
        this.#errors.push(error);
        this.#emitRecord({ stream: 'error', error, runspaceId, time: Date.now(), index: error.index });
      },
      record: this.#emitRecord,
      get backlog() {
        return buffer.size;
      },
      finished: (error) => {
        this.#finished = true;
        this.#error = error === undefined && options.reportAtEnd && this.#errors.length > 0 ? new ParallelLoopError(this.#errors, this.#completed) : error;
        this.#buffer.release();
        this.#wakeConsumer();
      },
    };
    this.#engine = new LoopEngine(pool, input, fn, options, sink);
  }

  /** Failures of single items so far (`errorAction: 'continue'`), each with its item's `index`. */
  get errors(): readonly ParallelItemError[] {
    return this.#errors;
  }

  /** Items that finished so far, successfully or not. */
  get completed(): number {
    return this.#completed;
  }

  /** True once no item runs any more and no more will start. */
  get finished(): boolean {
    return this.#finished;
  }

  [Symbol.asyncIterator](): AsyncIterator<R> {
    if (this.#iterated) throw new InvalidOperationError('A parallel loop can be iterated only once; its outputs are not kept after delivery.');
    this.#iterated = true;
    return this;
  }

  async next(): Promise<IteratorResult<R>> {
    for (;;) {
      const next = this.#buffer.shift();
      if (next.found) {
        this.#engine.consumed();
        return { value: next.value as R, done: false };
      }
      if (this.#finished) {
        if (this.#error !== undefined && !this.#errorThrown) {
          this.#errorThrown = true;
          throw this.#error;
        }
        return { value: undefined, done: true };
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Called by `break`: cancels what still runs, and resolves once it stopped. */
  async return(): Promise<IteratorResult<R>> {
    await this.stop();
    return { value: undefined, done: true };
  }

  /** Every output, once the loop is over (throws as iterating would). */
  async toArray(): Promise<R[]> {
    const outputs: R[] = [];
    for await (const output of this) outputs.push(output);
    return outputs;
  }

  /**
   * Awaiting the loop collects every output, as `toArray()` does: `await
   * pool.forEachParallel(...)` is the array of outputs (or throws as the loop
   * would), never a loop object left running while the code goes on.
   * Awaiting it again gives the same array.
   *
   * @example
   * ```ts
   * const lengths = await pool.forEachParallel(['a', 'bb'], (s: string) => s.length, { ordered: true });
   * console.log(lengths);   // [1, 2]
   * ```
   */
  then<A = R[], B = never>(onFulfilled?: ((outputs: R[]) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    this.#collected ??= this.toArray();
    return this.#collected.then(onFulfilled, onRejected);
  }

  /**
   * Stops the loop: no more input starts, running items are cancelled, and
   * iteration ends after the outputs already produced. Resolves once every
   * item stopped.
   */
  async stop(): Promise<void> {
    this.#engine.stop();
    await this.#engine.settled;
  }

  #wakeConsumer(): void {
    const wake = this.#wake;
    if (wake === undefined) return;
    this.#wake = undefined;
    wake();
  }
}
