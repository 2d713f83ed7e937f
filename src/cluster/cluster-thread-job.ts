/**
 * `Start-ThreadJob` on a cluster: a call run on some node, followed as a
 * job. `NotStarted` while it waits in the queue, `Running` from the moment a
 * node takes it (the node says so on the caller's reply stream), then
 * `Completed` (its records arrive as it writes them, `ctx.writeOutput`
 * values as output; its return value last),
 * `Failed`, or `Stopped` after `stop()` (it is removed from the queue, or
 * cancelled on its node).
 *
 * @module
 */

import { randomUUID } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { commandOf, Job } from '../parallel/job.js';
import type { ModuleFunction } from '../pool/invocation.js';
import { deserializeError } from '../protocol/error-codec.js';
import { readOptions } from '../util/options.js';
import type { ClusterHost } from './cluster-loop.js';
import { invokeJob, unpack, type InvokeResult } from './wire.js';

/** Options of `cluster.startThreadJob`. */
export interface ClusterThreadJobOptions<A extends readonly unknown[] = readonly unknown[], U = Readonly<Record<string, unknown>>> {
  readonly args?: A;
  readonly using?: U;
  /** The job's name. Default `Job<id>`. */
  readonly name?: string;
  /** The file a script block's relative `import()` resolves against, under the module root (default: the file that defined it). */
  readonly baseUrl?: string | URL;
}

/**
 * A thread job running on a worker node of a cluster.
 *
 * @example
 * ```ts
 * const job = cluster.startThreadJob((ctx, n: number) => n * 2, { args: [21], name: 'double' });
 * await job.wait();
 * console.log(job.state, job.receive().output);   // 'Completed' [42]
 * ```
 */
export class ClusterThreadJob<R = unknown> extends Job<R> {
  readonly #host: ClusterHost;
  readonly #call = randomUUID();

  /** @internal Jobs come from `cluster.startThreadJob()`. */
  constructor(host: ClusterHost, fn: Function | ModuleFunction, options: ClusterThreadJobOptions, onRemove: (job: Job<R>) => void) {
    const read = readOptions(options, ['args', 'using', 'name', 'baseUrl']) as ClusterThreadJobOptions;
    if (read.name !== undefined && typeof read.name !== 'string') throw new InvalidArgumentError('name', 'expected a string');
    super(read.name, commandOf(fn), onRemove);
    this.#host = host;
    const job = invokeJob(this.#call, host.wireFunction(fn, read.baseUrl), read.args, read.using);
    host.submit(job, this.#call, {
      onActive: () => this.setState('Running'),
      onRecords: (records) => records.forEach((record) => this.addRecord(record)),
    }).then(
      (packed) => this.#finish(unpack<InvokeResult>(packed)),
      (error: unknown) => this.#fail(error),
    );
  }

  protected requestStop(): void {
    this.#host.cancel(this.#call, [this.#call]);
    this.setState('Stopped');
  }

  #finish(result: InvokeResult): void {
    if (this.isFinished) return;
    if (!result.ok) {
      this.#fail(deserializeError(result.error));
      return;
    }
    if (result.value !== undefined) this.addOutput(result.value as R);
    this.setState('Completed');
  }

  #fail(error: unknown): void {
    if (this.isFinished) return;
    this.addError(error);
    this.setState('Failed', error);
  }
}
