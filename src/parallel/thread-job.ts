/**
 * `Start-ThreadJob` for Node: a function run in the background in one
 * runspace of the pool, its state and output kept in a {@link Job}.
 *
 * @module
 */

import { InvalidArgumentError, OperationCancelledError } from '../errors.js';
import { readOptions, asArgumentError } from '../util/options.js';
import { scriptFor } from '../pool/script-registry.js';
import { validateUsing, type InternalInvokeOptions, type ModuleFunction } from '../pool/invocation.js';
import type { Runspace } from '../pool/runspace.js';
import type { StreamRecord } from '../protocol/stream-records.js';
import type { JobContext, RunspaceContext } from '../runspace/context.js';
import { commandOf, Job } from './job.js';

/** A thread job's function: `ctx` (with `ctx.input`) first, then the job's `args`. */
export type JobScriptBlock<A extends readonly unknown[] = unknown[], R = unknown, U = Readonly<Record<string, unknown>>> =
  (ctx: JobContext<U>, ...args: A) => R;

/** Options of `pool.startThreadJob` (`Start-ThreadJob`): name, initialization script, input, `using`, arguments. */
export interface ThreadJobOptions<A extends readonly unknown[] = unknown[], U = Readonly<Record<string, unknown>>> {
  /** Arguments after `ctx`; cloned into the runspace. */
  readonly args?: A;
  /** Values read as `ctx.using`; functions are refused. */
  readonly using?: U;
  /** The job's name. Default `Job<id>`. */
  readonly name?: string;
  /**
   * Runs first, in the same runspace (PowerShell's `-InitializationScript`).
   * What it returns (unless `undefined`) comes first in the job's output, as
   * PowerShell returns the initialization script's output before the job's.
   */
  readonly initializationScript?: (ctx: RunspaceContext<U>) => unknown;
  /** Input objects, read as `ctx.input` (PowerShell's `-InputObject`). */
  readonly input?: Iterable<unknown>;
  /** File that relative `import()` resolves against. Default: the file that defined the function. */
  readonly baseUrl?: string | URL;
}

/** What a thread job needs from its pool. */
export interface ThreadJobHost {
  acquire(options: { signal: AbortSignal }): Promise<Runspace>;
}

/**
 * A job running one function in one runspace. It is `NotStarted` until the
 * job throttle and the pool give it a runspace, `Running` while it runs, then
 * `Completed` (its return value is its output), `Failed` (`reason`, also in
 * the error stream) or, after `stop()`, `Stopped`.
 *
 * @example
 * ```ts
 * const job = pool.startThreadJob((ctx, a: number, b: number) => a + b, { args: [1, 2], name: 'sum' });
 * await job.wait();
 * console.log(job.state, job.receive().output); // 'Completed' [3]
 * ```
 */
export class ThreadJob<R = unknown> extends Job<R> {
  readonly #fn: Function | ModuleFunction;
  readonly #options: InternalInvokeOptions;
  readonly #initialization: Function | undefined;
  readonly #abort = new AbortController();
  #started = false;

  /** @internal Jobs come from `pool.startThreadJob()`. */
  constructor(fn: Function | ModuleFunction, options: ThreadJobOptions<readonly unknown[]>, onRemove: (job: Job<R>) => void) {
    const read = readOptions(options, ['name', 'initializationScript', 'input', 'using', 'args', 'baseUrl']) as ThreadJobOptions<readonly unknown[]>;
    if (read.name !== undefined && typeof read.name !== 'string') throw new InvalidArgumentError('name', 'expected a string');
    super(read.name, commandOf(fn), onRemove);
    options = read;
    if (options.initializationScript !== undefined && typeof options.initializationScript !== 'function') {
      throw new InvalidArgumentError('initializationScript', 'expected a function (ctx) => ...');
    }
    if (options.input !== undefined && (options.input === null || typeof (options.input as Iterable<unknown>)[Symbol.iterator] !== 'function')) {
      throw new InvalidArgumentError('input', 'expected an iterable of input objects');
    }
    validateUsing(options.using);
    // A script block that uses names of the code around it is refused now, not when the job runs.
    for (const script of [fn, options.initializationScript]) if (typeof script === 'function') scriptFor(script, undefined);
    this.#fn = fn;
    this.#initialization = options.initializationScript;
    this.#options = {
      args: options.args,
      using: options.using,
      baseUrl: options.baseUrl,
      input: options.input === undefined ? undefined : readInput(options.input),
      signal: this.#abort.signal,
      onRecord: (record: StreamRecord) => this.addRecord(record),
    };
  }

  /** @internal Runs the job once its throttle lets it; `done` is called when it finished. */
  async run(host: ThreadJobHost): Promise<void> {
    if (this.isFinished) return;
    this.#started = true;
    let runspace: Runspace;
    try {
      runspace = await host.acquire({ signal: this.#abort.signal });
    } catch (error) {
      this.#end(error);
      return;
    }
    try {
      if (this.#abort.signal.aborted) throw new OperationCancelledError(this.#abort.signal.reason, false);
      this.setState('Running');
      if (this.#initialization !== undefined) {
        const initialOutput = await runspace.invoke(this.#initialization as (ctx: RunspaceContext) => unknown, {
          using: this.#options.using as Readonly<Record<string, unknown>> | undefined,
          baseUrl: this.#options.baseUrl,
          signal: this.#options.signal,
          onRecord: this.#options.onRecord,
        });
        if (initialOutput !== undefined) this.addOutput(initialOutput as R);
      }
      const output = await runspace.invoke(this.#fn as never, this.#options as never);
      // As a script block that returns nothing outputs nothing in PowerShell.
      if (output !== undefined) this.addOutput(output as R);
      this.setState('Completed');
    } catch (error) {
      this.#end(error);
    } finally {
      runspace.release();
    }
  }

  /** @internal The job will never run (its pool closed first). */
  abandon(error: unknown): void {
    this.#end(error);
  }

  protected requestStop(): void {
    this.#abort.abort();
    // Still waiting for the job throttle: nothing to wait for.
    if (!this.#started) this.setState('Stopped');
  }

  #end(error: unknown): void {
    if (this.state === 'Stopping') {
      this.setState('Stopped');
      return;
    }
    this.addError(error);
    this.setState('Failed', error);
  }
}

/** A job's input objects, read once (an iterable that throws is the caller's mistake, named). */
function readInput(input: Iterable<unknown>): unknown[] {
  try {
    return [...input];
  } catch (error) {
    throw asArgumentError(error, 'input');
  }
}
