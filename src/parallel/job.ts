/**
 * What every job has, as PowerShell's `Job`: a state machine, the data its
 * work produced (kept until received), child jobs, and `wait`, `receive`,
 * `stop` and `remove`.
 *
 * States move forward only: `NotStarted` → `Running` → `Completed` or
 * `Failed`; `stop()` goes through `Stopping` to `Stopped`. A job in a
 * finished state (Completed, Failed, Stopped) never changes again.
 *
 * @module
 */

import { EventEmitter } from 'node:events';
import { InvalidArgumentError, InvalidOperationError } from '../errors.js';
import { onCancel } from '../util/deadline.js';
import { cancelOptions } from '../util/options.js';
import type { StreamRecord } from '../protocol/stream-records.js';

/** The states of a job, as PowerShell's `JobState`. */
export type JobState = 'NotStarted' | 'Running' | 'Completed' | 'Failed' | 'Stopping' | 'Stopped';

/** What a job's `stateChanged` event carries: the state left, the state entered, and why it failed. */
export interface JobStateChange {
  readonly previous: JobState;
  readonly state: JobState;
  /** Why the job failed, for `Failed`. */
  readonly reason?: unknown;
}

/** Events of a {@link Job}. */
export interface JobEvents {
  stateChanged: [change: JobStateChange];
  /** Output, an error or a record arrived: `receive()` has something new. */
  data: [];
}

/** What `receive()` returns: the data that arrived since the last receive. */
export interface JobData<T> {
  /** Outputs: a thread job's return value; a loop job's item outputs, in input order. */
  readonly output: T[];
  /** The error stream: what failed the job (or its items), and what it wrote with `ctx.writeError`. */
  readonly errors: unknown[];
  /** Every other stream record (warning, verbose, debug, information, progress), in arrival order. */
  readonly records: StreamRecord[];
}

/** Options of `job.receive`. */
export interface ReceiveOptions {
  /** Keep the data in the job so a later `receive` returns it again. Default false. */
  readonly keep?: boolean;
}

/** Options of `job.wait`, `Job.waitAny` and `Job.waitAll`. */
export interface JobWaitOptions {
  /** Milliseconds to wait; then `wait` resolves false. Default: no limit. */
  readonly timeout?: number;
  readonly signal?: AbortSignal;
}

/** What `pool.getJobs(filter)` selects by (PowerShell's `Get-Job -Name -State -Command`); every filter given must match. */
export interface JobFilter {
  readonly name?: string;
  readonly state?: JobState;
  /** A substring of the job's `command`, or a `RegExp` it matches. */
  readonly command?: string | RegExp;
}

/** Options of `job.remove`. */
export interface RemoveOptions {
  /** Stop a job that is still running, then remove it. Default false: refuse. */
  readonly force?: boolean;
}

const FINISHED: ReadonlySet<JobState> = new Set(['Completed', 'Failed', 'Stopped']);

/** @internal What a job shows as its `command`: a script block's source, or `module#export`. */
export function commandOf(fn: unknown): string {
  if (typeof fn === 'function') return Function.prototype.toString.call(fn);
  const target = fn as { module?: unknown; export?: unknown } | null;
  const module = target?.module instanceof URL ? target.module.href : String(target?.module);
  return `${module}#${typeof target?.export === 'string' ? target.export : 'default'}`;
}

let nextJobId = 1;

/**
 * A job: work that runs in the background while you go on, whose state and
 * data you query when you like.
 *
 * @example
 * ```ts
 * const job = pool.startThreadJob((ctx) => 6 * 7, { name: 'answer' });
 * job.on('stateChanged', ({ state }) => console.log(job.name, state));
 * await job.wait();
 * console.log(job.receive().output);   // [42]
 * ```
 */
export abstract class Job<T = unknown> extends EventEmitter<JobEvents> {
  /** Unique in the process, increasing. */
  readonly id = nextJobId++;
  readonly name: string;
  /**
   * What the job runs, as `Get-Job` shows it: the script block's source, or
   * `module#export` for a module function.
   */
  readonly command: string;
  #state: JobState = 'NotStarted';
  #reason: unknown;
  #output: T[] = [];
  #errors: unknown[] = [];
  #records: StreamRecord[] = [];
  #startTime: Date | undefined;
  #endTime: Date | undefined;
  readonly #finished: Promise<void>;
  #resolveFinished!: () => void;
  #onRemove: ((job: Job<T>) => void) | undefined;

  protected constructor(name: string | undefined, command: string, onRemove?: (job: Job<T>) => void) {
    super();
    this.name = name ?? `Job${this.id}`;
    this.command = command;
    this.#onRemove = onRemove;
    this.#finished = new Promise((resolve) => {
      this.#resolveFinished = resolve;
    });
  }

  get state(): JobState {
    return this.#state;
  }

  /** True in Completed, Failed or Stopped: nothing runs any more. */
  get isFinished(): boolean {
    return FINISHED.has(this.#state);
  }

  /** What made the job fail, for `Failed`. */
  get reason(): unknown {
    return this.#reason;
  }

  /** When the job started running. */
  get startTime(): Date | undefined {
    return this.#startTime;
  }

  /** When the job finished. */
  get endTime(): Date | undefined {
    return this.#endTime;
  }

  /** The jobs this job is made of (one per item for a loop run as a job). */
  get childJobs(): readonly Job<T>[] {
    return [];
  }

  /** True while the job or a child holds data not yet received. */
  get hasMoreData(): boolean {
    if (this.#output.length > 0 || this.#errors.length > 0 || this.#records.length > 0) return true;
    return this.childJobs.some((child) => child.hasMoreData);
  }

  /**
   * Resolves true once the job is finished, or false when `timeout` passes
   * first. It never rejects for the job's own failure (look at `state` and
   * `reason`), as `Wait-Job` does not.
   */
  async wait(options: JobWaitOptions = {}): Promise<boolean> {
    const limits = cancelOptions(options);
    if (this.isFinished) return true;
    return Job.#within(this.#finished.then(() => true), limits, false);
  }

  /**
   * Resolves with the first of `jobs` to finish (`Wait-Job -Any`), or
   * undefined when `timeout` passes first; rejects with the signal's reason
   * when `signal` aborts. A job already finished is returned at once.
   *
   * @example
   * ```ts
   * const jobs = [3, 1, 2].map((n) => pool.startThreadJob((ctx, x: number) => x * 10, { args: [n], name: `times-${n}` }));
   * const first = await ThreadJob.waitAny(jobs, { timeout: 5_000 });
   * console.log(first?.name, first?.receive().output);
   * ```
   */
  static async waitAny<J extends Job<unknown>>(jobs: readonly J[], options: JobWaitOptions = {}): Promise<J | undefined> {
    const list = jobList(jobs);
    if (list.length === 0) throw new InvalidArgumentError('jobs', 'expected at least one job to wait for');
    const limits = cancelOptions(options);
    const done = list.find((job) => job.isFinished);
    if (done !== undefined) return done;
    return Job.#within(Promise.race(list.map((job) => job.#finished.then(() => job))), limits, undefined);
  }

  /**
   * Resolves true once every one of `jobs` is finished (`Wait-Job`), or false
   * when `timeout` passes first; rejects with the signal's reason when
   * `signal` aborts. Like `wait`, it never rejects for a job's own failure.
   *
   * @example
   * ```ts
   * const jobs = ['a', 'b'].map((s) => pool.startThreadJob((ctx, text: string) => text.repeat(3), { args: [s] }));
   * if (!(await ThreadJob.waitAll(jobs, { timeout: 60_000 }))) for (const job of jobs) await job.stop();
   * ```
   */
  static async waitAll(jobs: readonly Job<unknown>[], options: JobWaitOptions = {}): Promise<boolean> {
    const list = jobList(jobs);
    const limits = cancelOptions(options);
    if (list.every((job) => job.isFinished)) return true;
    return Job.#within(Promise.all(list.map((job) => job.#finished)).then(() => true), limits, false);
  }

  /** `settled`, or `onTimeout` when the timeout passes first, or the abort reason as a rejection. */
  static #within<R>(settled: Promise<R>, { timeout, signal }: { readonly timeout: number | undefined; readonly signal: AbortSignal | undefined }, onTimeout: R): Promise<R> {
    if (timeout === undefined && signal === undefined) return settled;
    return new Promise<R>((resolve, reject) => {
      const detach = onCancel(signal, timeout, (cause) => {
        if (cause.kind === 'abort') reject(cause.reason);
        else resolve(onTimeout);
      });
      void settled.then((value) => {
        detach();
        resolve(value);
      });
    });
  }

  /**
   * The data that arrived so far, this job's and then its children's; it is
   * removed from the job unless `keep` is true.
   */
  receive(options: ReceiveOptions = {}): JobData<T> {
    const data: JobData<T> = { output: [], errors: [], records: [] };
    this.collect(data, options.keep === true);
    return data;
  }

  /** @internal Appends this job's data (then its children's) to `into`. */
  collect(into: JobData<T>, keep: boolean): void {
    into.output.push(...this.#output);
    into.errors.push(...this.#errors);
    into.records.push(...this.#records);
    if (!keep) {
      this.#output = [];
      this.#errors = [];
      this.#records = [];
    }
    for (const child of this.childJobs) child.collect(into, keep);
  }

  /** Stops the job; resolves once it is Stopped (or finished on its own first). */
  async stop(): Promise<void> {
    if (this.isFinished) return;
    if (this.#state !== 'Stopping') this.setState('Stopping');
    this.requestStop();
    await this.#finished;
  }

  /**
   * Removes the job from its pool's job list. A job still running is refused
   * unless `force`, which stops it first.
   */
  async remove(options: RemoveOptions = {}): Promise<void> {
    if (!this.isFinished) {
      if (options.force !== true) {
        throw new InvalidOperationError(`Job ${this.id} (${this.name}) is ${this.#state}; stop it first or pass { force: true }.`);
      }
      await this.stop();
    }
    const onRemove = this.#onRemove;
    this.#onRemove = undefined;
    onRemove?.(this);
  }

  /** Asks the work to stop; the subclass moves the job to Stopped when it has. */
  protected abstract requestStop(): void;

  protected setState(state: JobState, reason?: unknown): void {
    const previous = this.#state;
    if (previous === state || this.isFinished) return;
    // Running only starts a job; it never undoes a stop in progress.
    if (state === 'Running' && previous !== 'NotStarted') return;
    this.#state = state;
    if (state === 'Running') this.#startTime ??= new Date();
    if (FINISHED.has(state)) {
      this.#startTime ??= new Date();
      this.#endTime = new Date();
      if (state === 'Failed') this.#reason = reason;
    }
    this.emit('stateChanged', state === 'Failed' ? { previous, state, reason } : { previous, state });
    if (FINISHED.has(state)) this.#resolveFinished();
  }

  protected addOutput(value: T): void {
    this.#output.push(value);
    this.emit('data');
  }

  protected addError(error: unknown): void {
    this.#errors.push(error);
    this.emit('data');
  }

  /** @internal Files a stream record under the output stream, the error stream or the others. */
  addRecord(record: StreamRecord): void {
    if (record.stream === 'error') this.#errors.push(record.error);
    else if (record.stream === 'output') this.#output.push(record.data as T);
    else this.#records.push(record);
    this.emit('data');
  }
}

/** The jobs to wait for, checked: an array of jobs of this library. */
function jobList<J extends Job<unknown>>(jobs: readonly J[]): readonly J[] {
  if (!Array.isArray(jobs)) throw new InvalidArgumentError('jobs', 'expected an array of jobs');
  const list = [...jobs];
  list.forEach((job, index) => {
    if (!(job instanceof Job)) throw new InvalidArgumentError('jobs', `jobs[${index}] is not a job`);
  });
  return list;
}
