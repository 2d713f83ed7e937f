/**
 * A parallel loop run as a job (`asJob: true`): a parent job with one child
 * job per item, as `ForEach-Object -Parallel -AsJob` makes.
 *
 * @module
 */

import type { ParallelItemError } from '../errors.js';
import type { ModuleFunction } from '../pool/invocation.js';
import type { LoopPool } from '../pool/loop-pool.js';
import type { StreamRecord } from '../protocol/stream-records.js';
import type { LoopInput } from './input-source.js';
import { commandOf, Job } from './job.js';
import { LoopEngine } from './loop-engine.js';
import type { NormalizedLoopOptions } from './options.js';

/**
 * One item of a loop job: `NotStarted` while its item waits (for a
 * runspace, or behind the throttle), `Running` from the moment it starts.
 * Stopping it stops the whole loop: items run in shared chunks.
 *
 * @example
 * ```ts
 * const job = pool.forEachParallel([1, 2, 3], (n: number) => n * 2, { asJob: true });
 * await job.wait();
 * for (const child of job.childJobs) console.log(child.name, child.state, child.receive().output);
 * ```
 */
export class ParallelChildJob<R> extends Job<R> {
  /** @internal */
  constructor(readonly index: number, readonly parent: ParallelJob<R>) {
    super(`${parent.name}[${index}]`, parent.command);
  }

  /** @internal */
  begin(): void {
    this.setState('Running');
  }

  /** @internal */
  complete(output: R): void {
    this.addOutput(output);
    this.setState('Completed');
  }

  /** @internal */
  fail(error: ParallelItemError): void {
    this.addError(error);
    this.setState('Failed', error);
  }

  /** @internal The item never ran, or was cancelled while running. */
  halt(): void {
    this.setState('Stopped');
  }

  protected requestStop(): void {
    void this.parent.stop();
  }
}

/**
 * A parallel loop as a job, as `ForEach-Object -Parallel -AsJob` makes: one
 * child job per item, `NotStarted` until that item starts. The parent is
 * `Running` once the first item starts, then `Completed` when every item completed, `Failed` when any item
 * (or the loop itself) failed, `Stopped` after `stop()`. `receive()` on the
 * parent returns every child's data, in input order.
 *
 * @example
 * ```ts
 * const job = pool.forEachParallel(urls, (url) => fetch(url).then((r) => r.status), { asJob: true });
 * await job.wait();
 * console.log(job.state, job.childJobs.length, job.receive().output);
 * ```
 */
export class ParallelJob<R = unknown> extends Job<R> {
  readonly #children: ParallelChildJob<R>[] = [];
  readonly #engine: LoopEngine;

  /** @internal Loop jobs come from `pool.forEachParallel(..., { asJob: true })`. */
  constructor(
    pool: LoopPool,
    input: LoopInput<unknown>,
    fn: Function | ModuleFunction,
    options: NormalizedLoopOptions,
    name: string | undefined,
    onRemove: (job: Job<R>) => void,
  ) {
    super(name, commandOf(fn), onRemove);
    const children = this.#children;
    // An array's items are all known now: each has its (NotStarted) child job from the start.
    if (Array.isArray(input)) for (let index = 0; index < input.length; index++) children.push(new ParallelChildJob<R>(index, this));
    this.#engine = new LoopEngine(pool, input, fn, options, {
      sent: (first, count) => {
        for (let index = first; index < first + count; index++) children[index] ??= new ParallelChildJob<R>(index, this);
      },
      itemStarted: (index) => {
        this.setState('Running');
        children[index]?.begin();
      },
      delivered: (first, values, failed, length) => {
        for (let i = 0; i < length; i++) {
          const child = children[first + i];
          if (child === undefined || failed?.has(i)) continue;
          if (i < values.length) child.complete(values[i] as R);
          else child.halt();
        }
      },
      failed: (error: ParallelItemError) => {
        children[error.index]?.fail(error);
      },
      record: (record: StreamRecord) => {
        const child = record.index === undefined ? undefined : children[record.index];
        (child ?? this).addRecord(record);
      },
      backlog: 0,
      finished: (error) => this.#finish(error),
    });
  }

  override get childJobs(): readonly ParallelChildJob<R>[] {
    return this.#children;
  }

  protected requestStop(): void {
    this.#engine.stop();
  }

  #finish(error: unknown): void {
    for (const child of this.#children) if (child !== undefined && !child.isFinished) child.halt();
    if (this.state === 'Stopping') {
      this.setState('Stopped');
    } else if (error !== undefined) {
      this.addError(error);
      this.setState('Failed', error);
    } else {
      const failed = this.#children.find((child) => child?.state === 'Failed');
      this.setState(failed === undefined ? 'Completed' : 'Failed', failed?.reason);
    }
  }
}
