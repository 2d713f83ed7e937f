/**
 * Options of `forEachParallel`, their defaults, and their validation: every
 * invalid option throws {@link InvalidArgumentError} before any item starts.
 *
 * @module
 */

import { availableParallelism } from 'node:os';
import { InvalidArgumentError, shown } from '../errors.js';
import { validateUsing } from '../pool/invocation.js';
import { timeoutMs } from '../util/deadline.js';
import { abortSignalOption, baseUrlOption, readOptions } from '../util/options.js';
import type { ProgressInfo, StreamRecord } from '../protocol/stream-records.js';
import type { ParallelContext } from '../runspace/context.js';

/** What a failing item does to its loop, as PowerShell's `-ErrorAction`. */
export type ErrorAction = 'continue' | 'stop';

/** A progress record written by an item (`ctx.writeProgress`), tagged with its index. */
export type ProgressRecord = Extract<StreamRecord, { stream: 'progress' }> & { readonly progress: ProgressInfo };

/** Options of `pool.forEachParallel` and `parallel`: throttle, `using`, ordering, bounds, timeout, errors, streams. */
export interface ForEachParallelOptions<U = Readonly<Record<string, unknown>>> {
  /**
   * Most items running at once (runspaces the loop uses at a time). Default
   * `os.availableParallelism()`; PowerShell's default is 5.
   */
  readonly throttleLimit?: number;
  /** Values the function reads as `ctx.using`: evaluated once, cloned into each runspace; functions are refused. */
  readonly using?: U;
  /**
   * Milliseconds for the whole loop. When it passes, running items are
   * cancelled, remaining input is not started, results so far are delivered,
   * then the loop throws `TimeoutError`. Not allowed with `asJob`.
   */
  readonly timeout?: number;
  /** Stops the loop like `timeout` does, ending with `OperationCancelledError`. */
  readonly signal?: AbortSignal;
  /** Deliver results in input order (holding at most a bounded window). Default false: completion order. */
  readonly ordered?: boolean;
  /** Run every item in a runspace opened for it alone and closed after it. Default false. */
  readonly useNewRunspace?: boolean;
  /**
   * What a failing item does. Not given (the default): every item runs, as
   * in PowerShell, each failure is an error record (`loop.errors`,
   * `onRecord`), and once every output was delivered the loop throws
   * `ParallelLoopError` listing the failures, so a loop never fails
   * silently. `'continue'`: the same without the final error (you read
   * `loop.errors`). `'stop'`: the first failure stops the loop, which then
   * throws `ParallelItemError`.
   */
  readonly errorAction?: ErrorAction;
  /** Every stream record items write, tagged with the item's `index`. Default: the pool's `record` event. */
  readonly onRecord?: (record: StreamRecord) => void;
  /** Progress records items write (`ctx.writeProgress`), e.g. to drive a progress bar. */
  readonly onProgress?: (record: ProgressRecord) => void;
  /**
   * Outputs held for a consumer that is not reading, before the loop stops
   * taking input. Default 1024. Outputs held plus items in flight never pass
   * `highWaterMark` plus one item per lane (`throttleLimit`), whatever the
   * size of each output; chunks are sized to fit. A larger value lets tiny
   * items travel in larger chunks (faster); a smaller one bounds memory when
   * outputs are large.
   */
  readonly highWaterMark?: number;
  /** File that relative `import()` in the function resolves against. Default: the file that defined it. */
  readonly baseUrl?: string | URL;
}

export interface NormalizedLoopOptions {
  readonly throttleLimit: number;
  readonly using: Readonly<Record<string, unknown>> | undefined;
  readonly timeout: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly ordered: boolean;
  readonly useNewRunspace: boolean;
  readonly errorAction: ErrorAction;
  /** `errorAction` was not given: a loop with failed items throws ParallelLoopError once its outputs are delivered. */
  readonly reportAtEnd: boolean;
  readonly onRecord: ((record: StreamRecord) => void) | undefined;
  readonly onProgress: ((record: ProgressRecord) => void) | undefined;
  readonly highWaterMark: number;
  readonly baseUrl: string | undefined;
}

const LOOP_OPTIONS = [
  'throttleLimit', 'using', 'timeout', 'signal', 'ordered', 'useNewRunspace', 'errorAction', 'onRecord', 'onProgress', 'highWaterMark', 'baseUrl',
] as const;

function positiveInteger(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(name, `expected an integer of at least 1, got ${shown(value)}`);
  }
}

function optionalFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') throw new InvalidArgumentError(name, 'expected a function');
}

export function normalizeLoopOptions(options: ForEachParallelOptions<unknown>, asJob: boolean): NormalizedLoopOptions {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options', 'expected an options object');
  options = readOptions(options, LOOP_OPTIONS) as ForEachParallelOptions<unknown>;
  const throttleLimit = options.throttleLimit ?? availableParallelism();
  positiveInteger('throttleLimit', throttleLimit);
  const highWaterMark = options.highWaterMark ?? 1024;
  positiveInteger('highWaterMark', highWaterMark);
  const { signal } = options;
  // Not given: every item runs, and failures end the iteration with ParallelLoopError (never silent).
  const reportAtEnd = options.errorAction === undefined;
  const errorAction = options.errorAction ?? 'continue';
  if (options.timeout !== undefined && asJob) {
    throw new InvalidArgumentError('timeout', 'a loop run as a job has no timeout (as in PowerShell); use job.wait({ timeout }) and job.stop()');
  }
  const timeout = timeoutMs('timeout', options.timeout);
  abortSignalOption(signal);
  if (errorAction !== 'continue' && errorAction !== 'stop') {
    throw new InvalidArgumentError('errorAction', `expected 'continue' or 'stop', got ${shown(errorAction)}`);
  }
  const using = validateUsing(options.using);
  optionalFunction('onRecord', options.onRecord);
  optionalFunction('onProgress', options.onProgress);
  const baseUrl = baseUrlOption(options.baseUrl);
  return {
    throttleLimit,
    using,
    timeout,
    signal,
    ordered: options.ordered === true,
    useNewRunspace: options.useNewRunspace === true,
    errorAction,
    reportAtEnd,
    onRecord: options.onRecord,
    onProgress: options.onProgress,
    highWaterMark,
    baseUrl,
  };
}

/** A parallel loop's function: the item first, then `ctx` (with `ctx.index`), as `$_` in `ForEach-Object`. */
export type LoopFunction<T = unknown, R = unknown, U = Readonly<Record<string, unknown>>> = (item: T, ctx: ParallelContext<U>) => R;
