/**
 * The pool's side of one runspace: its worker thread, the tasks sent to it
 * and not yet answered (in send order), and the bookkeeping to tell, when the
 * worker dies, exactly which of those tasks had started (lost) and which had
 * not (safe to run elsewhere).
 *
 * @module
 */

import { MessageChannel, Worker, type ResourceLimits, type TransferListItem, type WorkerOptions } from 'node:worker_threads';
import { AffinityLink } from '../affinity/link.js';
import { REFUSED_VALUE, type ClassInstancePolicy, type Refusal } from '../affinity/class-instances.js';
import { RunspaceBrokenError, RunspacesError, UncloneableValueError } from '../errors.js';
import { findUncloneable } from '../protocol/clone-check.js';
import { deserializeError } from '../protocol/error-codec.js';
import {
  CONTROL_SLOTS,
  ControlSlot,
  cancelSlot,
  reclaimMark,
  type CancelKind,
  type ChunkOutcome,
  type FromRunspace,
  type RunspaceBoot,
  type ScriptDefinition,
  type WireResult,
  type WireTask,
} from '../protocol/messages.js';
import { decodeRecord, type StreamRecord } from '../protocol/stream-records.js';
import { syncArena } from '../sync/arena.js';
import { noteReleased } from '../sync/shared-cells.js';
import { startTimer, type Timer } from '../util/deadline.js';
import { Fifo } from '../util/fifo.js';
import { LruMap } from '../util/lru.js';
import { SCRIPTS_PER_RUNSPACE } from './script-registry.js';
import { holdSpinGate, spinGate } from './spare-cores.js';
import { assertMove, type RunspacePhase } from './runspace-phase.js';
import type { Task as AnyTask } from './task.js';

type Task = AnyTask<RunspaceHost>;

// One file, built from runspace/worker.ts by `npm run build`: Node's ESM loader
// pays about a millisecond per module, and every runspace pays it at startup.
const WORKER_URL = new URL('../runspace/worker.bundle.js', import.meta.url);

/**
 * Workers inherit the process's Node flags, but a few only make sense for the
 * main entry point and make a worker fail at start (`node --input-type=module -e ...`).
 * Undefined when there are none: then the worker inherits the flags, which
 * accepts V8 flags such as `--expose-gc` that an explicit list refuses.
 * An explicit list leaves out the flags a worker refuses (found by trying once
 * per process): V8 flags hold for the whole process, workers included.
 */
let acceptedExecArgv: { readonly argv: string[] | undefined } | undefined;

function createWorker(options: Omit<WorkerOptions, 'execArgv'>, execArgv: readonly string[] | undefined): Worker {
  if (execArgv !== undefined) return new Worker(WORKER_URL, { ...options, execArgv: [...execArgv] });
  acceptedExecArgv ??= { argv: workerExecArgv() };
  for (;;) {
    try {
      return new Worker(WORKER_URL, { ...options, execArgv: acceptedExecArgv.argv });
    } catch (error) {
      const refused = refusedFlags(error);
      const argv: string[] | undefined = acceptedExecArgv.argv;
      if (argv === undefined || refused.length === 0 || !refused.some((flag) => argv.includes(flag))) throw error;
      acceptedExecArgv = { argv: argv.filter((flag: string) => !refused.includes(flag)) };
    }
  }
}

/** The flags named by Node's "invalid execArgv flags: --a, --b" error; none for any other error. */
function refusedFlags(error: unknown): string[] {
  if ((error as { code?: unknown } | undefined)?.code !== 'ERR_WORKER_INVALID_EXEC_ARGV' || !(error instanceof Error)) return [];
  const listed = error.message.split(': ')[1] ?? '';
  return listed.split(/,\s*/).map((flag) => flag.trim()).filter((flag) => flag.startsWith('-'));
}

function workerExecArgv(): string[] | undefined {
  const argv: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const flag = process.execArgv[i]!;
    if (/^--input-type(=|$)/.test(flag)) {
      if (!flag.includes('=')) i++;
      continue;
    }
    if (/^(-e|--eval|-p|--print)$/.test(flag)) {
      i++;
      continue;
    }
    argv.push(flag);
  }
  return argv.length === process.execArgv.length ? undefined : argv;
}

export interface ExitInfo {
  readonly exitCode: number;
  readonly reason: string;
  readonly error: unknown;
  /** True when the pool ended the runspace on purpose (trim, close, recycle). */
  readonly intended: boolean;
  /** True when it stopped before it finished opening. */
  readonly duringOpen: boolean;
  /** The phase it worked in last (before the pool retired it, if it did): says whom its calls were for. */
  readonly phaseBefore: RunspacePhase;
}

export interface HostEvents {
  ready(host: RunspaceHost, openErrors: readonly unknown[]): void;
  taskDone(host: RunspaceHost, task: Task, result: WireResult): void;
  /** After a batch of results: capacity was freed. */
  progressed(host: RunspaceHost): void;
  record(host: RunspaceHost, task: Task | undefined, record: StreamRecord): void;
  /** Outcomes of a running chunk's first items, ahead of its result. */
  partial(host: RunspaceHost, task: Task, outcome: ChunkOutcome): void;
  /** An item of a running chunk began (chunks that asked, see `WireChunk.reportStarts`). */
  itemStarted(host: RunspaceHost, task: Task, index: number): void;
  /** `lost`: tasks that had started (their outcome is unknown); `unstarted`: never began. */
  exited(host: RunspaceHost, info: ExitInfo, lost: Task[], unstarted: Task[]): void;
}

export interface HostOptions {
  readonly variables: Readonly<Record<string, unknown>>;
  readonly modules: readonly string[];
  readonly startup: readonly ScriptDefinition[];
  readonly resourceLimits: ResourceLimits | undefined;
  readonly env: Readonly<Record<string, string>> | undefined;
  readonly argv: readonly string[] | undefined;
  /** The pool's own flags for its runspaces; undefined: this process's. */
  readonly execArgv: readonly string[] | undefined;
  readonly spinBeforeSleepUs: number;
  /** Calls it may run at once (see the pool's `concurrency`). */
  readonly concurrency: number;
  readonly classInstances: ClassInstancePolicy;
}

export class RunspaceHost {
  readonly id: number;
  readonly control: Int32Array;
  /** Carries calls on objects with runspace affinity, both ways. */
  readonly link: AffinityLink;
  /** Sent and not yet answered, in send order. Answers come in that order unless calls run side by side ({@link concurrency}). */
  readonly inFlight = new Fifo<Task>();
  /** Calls it may run at once. */
  readonly concurrency: number;
  /** Settles when the worker has exited. */
  readonly gone: Promise<void>;
  /** Settles true once the runspace is ready, false if it stopped before. */
  readonly opened: Promise<boolean>;
  #settleOpened!: (ready: boolean) => void;
  #phase: RunspacePhase;
  #retiredFrom: RunspacePhase | undefined;
  /** True once the runspace said it is ready (its modules and startup scripts ran). */
  #ready = false;
  /** Why it exited, for calls made later through a `Runspace` handle. */
  #exitError: RunspaceBrokenError | undefined;
  /** Estimated nanoseconds of work sent and not yet answered. */
  pendingNs = 0;
  /** `performance.now()` when it last answered, or got work while it had none: how long it has been stuck. */
  lastProgressAt = 0;
  /** Cancel slots holding a take-back mark the runspace has not passed yet: nothing may overwrite them. */
  readonly #markedSlots = new Set<number>();
  /** Trims this runspace when it stays idle; cancelled by leaving the idle phase. */
  #idleTimer: Timer | undefined;
  readonly #worker: Worker;
  readonly #events: HostEvents;
  /** Script blocks this runspace has compiled; it drops the ones this drops (see script-registry.ts). */
  readonly #knownScripts = new LruMap<number, true>(SCRIPTS_PER_RUNSPACE);
  #scriptsToForget: number[] = [];
  readonly #knownUsings = new Set<number>();
  #nextSeq = 1;
  #error: unknown;
  #intendedReason: string | undefined;
  #referenced = true;

  /** @param dedicated Opened for one call alone (`useNewRunspace`) and closed after it. */
  constructor(options: HostOptions, events: HostEvents, dedicated: boolean) {
    this.#events = events;
    this.concurrency = options.concurrency;
    this.#phase = dedicated ? 'dedicated' : 'opening';
    const control = new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT);
    this.control = new Int32Array(control);
    const affinity = new MessageChannel();
    const boot: RunspaceBoot = {
      control,
      variables: options.variables,
      modules: options.modules,
      startup: options.startup,
      spinBeforeSleepUs: options.spinBeforeSleepUs,
      concurrency: options.concurrency,
      spinGate: spinGate(),
      classInstances: options.classInstances,
      syncArena: syncArena(),
      affinityPort: affinity.port2,
    };
    this.#worker = createWorker({
      workerData: boot,
      transferList: [affinity.port2],
      resourceLimits: options.resourceLimits,
      ...(options.env === undefined ? {} : { env: { ...options.env } }),
      ...(options.argv === undefined ? {} : { argv: [...options.argv] }),
    }, options.execArgv);
    // Captured now: `threadId` reads -1 once the worker has exited.
    this.id = this.#worker.threadId;
    this.link = new AffinityLink(affinity.port1, this.id, options.classInstances);
    this.opened = new Promise((resolve) => {
      this.#settleOpened = resolve;
    });
    this.#worker.on('message', this.#onMessage);
    this.#worker.on('error', (error) => {
      this.#error = error;
    });
    const releaseSpinGate = options.spinBeforeSleepUs > 0 ? holdSpinGate() : undefined;
    this.gone = new Promise((resolve) => {
      this.#worker.once('exit', (exitCode) => {
        releaseSpinGate?.();
        this.#onExit(exitCode);
        resolve();
      });
    });
  }

  /** The one phase this runspace is in (see runspace-phase.ts). */
  get phase(): RunspacePhase {
    return this.#phase;
  }

  get exited(): boolean {
    return this.#phase === 'exited';
  }

  /** The error calls made through its handle after it died reject with. */
  get exitError(): RunspaceBrokenError | undefined {
    return this.#exitError;
  }

  /** The only way the phase changes; an illegal move throws. Leaving `idle` disarms the idle timer. */
  moveTo(next: RunspacePhase): void {
    assertMove(this.#phase, next, this.id);
    if (this.#phase === 'idle') this.#disarmIdleTimer();
    if (next === 'retiring') this.#retiredFrom = this.#phase;
    this.#phase = next;
  }

  /** Calls `trim` after `ms` idle milliseconds (`undefined`: never), unless the runspace leaves `idle` first. */
  armIdleTimer(ms: number | undefined, trim: () => void): void {
    if (this.#phase !== 'idle') return;
    this.#disarmIdleTimer();
    this.#idleTimer = startTimer(ms, () => {
      this.#idleTimer = undefined;
      trim();
    }).unref();
  }

  #disarmIdleTimer(): void {
    this.#idleTimer?.cancel();
    this.#idleTimer = undefined;
  }

  /** Sends tasks in one message. Tasks that cannot be cloned are rejected alone. */
  dispatch(tasks: readonly Task[]): void {
    if (tasks.length === 1) {
      this.#send(tasks[0]!);
      return;
    }
    const firstSeq = this.#nextSeq;
    const wires: WireTask[] = [];
    const staged: Task[] = [];
    let transfer: TransferListItem[] | undefined;
    for (const task of tasks) {
      const wire = this.#stage(task);
      if (wire === undefined) continue;
      wires.push(wire);
      staged.push(task);
      if (task.spec.transfer) (transfer ??= []).push(...task.spec.transfer);
    }
    if (staged.length === 0) return;
    try {
      this.#worker.postMessage({ type: 'run', tasks: wires }, transfer as never);
    } catch {
      // Nothing was sent: undo, then send one by one so only the bad task fails.
      for (let i = 0; i < staged.length; i++) this.#unstage(this.inFlight.pop()!);
      this.#nextSeq = firstSeq;
      for (const task of staged) this.#send(task);
      return;
    }
    for (const task of staged) this.#markScriptKnown(task);
    this.#sendForgottenScripts();
    this.#setReferenced(true);
  }

  /**
   * True when it can start another call at once beside those it runs: below
   * its concurrency, and not running a parallel loop's chunk (chunks run alone).
   */
  hasFreeSlot(): boolean {
    if (this.inFlight.length >= this.concurrency) return false;
    for (const task of this.inFlight) if (task.spec.chunk !== undefined) return false;
    return true;
  }

  /** Asks the running or waiting task to stop: shared flag first, then a message. */
  cancel(task: Task, kind: CancelKind): void {
    if (this.#phase === 'exited' || task.host !== this) return;
    // A take-back mark still waiting there is not overwritten: the message reaches this task instead.
    if (!this.#markedSlots.has(cancelSlot(task.seq))) Atomics.store(this.control, cancelSlot(task.seq), task.seq);
    this.#worker.postMessage({ type: 'cancel', seq: task.seq, kind });
  }

  /**
   * Takes back the calls waiting behind the one it runs, which it has not
   * begun, so they can run elsewhere: quick calls are sent several at a
   * time, and one of them may block (on a lock, a barrier, another call),
   * holding up those behind it. Each is marked in its cancel slot, then
   * `Started` is read: the runspace writes `Started` before it reads the
   * mark, so one of the two always sees the other. Calls that carry
   * transferred buffers, a cached `using` value, a cancellation, or belong to
   * a loop stay, and so does a call whose slot another call in flight
   * shares (128 apart): the mark must be the only thing in its slot until
   * the runspace passes it.
   */
  reclaimUnstarted(): Task[] {
    const taken: Task[] = [];
    if (this.#phase !== 'busy' || this.concurrency !== 1) return taken;
    const sharing = new Map<number, number>();
    for (const task of this.inFlight) sharing.set(cancelSlot(task.seq), (sharing.get(cancelSlot(task.seq)) ?? 0) + 1);
    for (const task of [...this.inFlight]) {
      const { spec } = task;
      if (spec.chunk !== undefined || spec.usingId !== undefined || (spec.transfer?.length ?? 0) > 0 || task.cancelKind !== undefined) continue;
      const slot = cancelSlot(task.seq);
      if (sharing.get(slot) !== 1 || this.#markedSlots.has(slot)) continue;
      if (Atomics.load(this.control, ControlSlot.Started) >= task.seq) continue;
      Atomics.store(this.control, slot, reclaimMark(task.seq));
      if (Atomics.load(this.control, ControlSlot.Started) >= task.seq) continue;
      this.#markedSlots.add(slot);
      this.inFlight.take((t) => t === task);
      this.#unstage(task);
      taken.push(task);
    }
    return taken;
  }

  /** True when the runspace has begun (or finished) running `task`. */
  hasStarted(task: Task): boolean {
    return Atomics.load(this.control, ControlSlot.Started) >= task.seq;
  }

  /** Ends the worker now; in-flight work is reported through `exited` with `reason`. */
  terminate(reason: string): Promise<void> {
    if (this.#phase !== 'exited') {
      this.#intendedReason ??= reason;
      if (this.#phase !== 'retiring') this.moveTo('retiring');
      void this.#worker.terminate();
    }
    return this.gone;
  }

  #send(task: Task): void {
    const wire = this.#stage(task);
    if (wire === undefined) return;
    try {
      this.#worker.postMessage({ type: 'run', tasks: [wire] }, task.spec.transfer as never);
    } catch (error) {
      this.inFlight.pop();
      this.#unstage(task);
      this.#nextSeq--;
      rejectUnsent(task, error);
      return;
    }
    this.#markScriptKnown(task);
    this.#sendForgottenScripts();
    this.#setReferenced(true);
  }

  /**
   * Encodes a task and records it as sent to this runspace; undefined when a
   * value could not be encoded (a class that cannot take part in affinity),
   * in which case the task is rejected with that error and nothing changed.
   */
  #stage(task: Task): WireTask | undefined {
    let wire: WireTask;
    try {
      wire = this.#encode(task, this.#nextSeq);
    } catch (error) {
      // The library's own refusals (a class that cannot take part in affinity) stand as they are;
      // anything else was thrown by the value itself, a getter or a Proxy trap: name where.
      if (error instanceof RunspacesError && !(REFUSED_VALUE in error)) task.reject(error);
      else rejectUnsent(task, error);
      return undefined;
    }
    task.placeOn(this, this.#nextSeq++);
    this.pendingNs += task.spec.cost.ns;
    if (this.inFlight.length === 0) this.lastProgressAt = performance.now();
    this.inFlight.push(task);
    return wire;
  }

  #encode(task: Task, seq: number): WireTask {
    const { fn, definition } = task.spec;
    const encoder = this.link.encoder();
    const ref = fn.kind === 'script' && definition !== undefined && !this.#knownScripts.has(fn.id)
      ? { ...fn, definition }
      : fn.kind === 'setVariable' ? { ...fn, value: encoder.encode(fn.value) } : fn;
    const { usingId, chunk, input } = task.spec;
    const using = task.spec.using === undefined || (usingId !== undefined && this.#knownUsings.has(usingId))
      ? undefined
      : (encoder.encode(task.spec.using) as Readonly<Record<string, unknown>>);
    const wire: WireTask = { seq, fn: ref, args: encoder.encodeArgs(task.spec.args), using };
    if (usingId === undefined && chunk === undefined && input === undefined && !encoder.loadsClasses) return wire;
    const encodedChunk = chunk === undefined ? undefined : { ...chunk, items: encoder.encodeArgs(chunk.items) };
    const encodedInput = input === undefined ? undefined : encoder.encodeArgs(input);
    return { ...wire, usingId, chunk: encodedChunk, input: encodedInput, loadsClasses: encoder.loadsClasses };
  }

  /**
   * Tells the runspace which compiled script blocks to drop, after the run
   * message that made room: tasks it already queued keep what they need.
   */
  #sendForgottenScripts(): void {
    if (this.#scriptsToForget.length === 0) return;
    const ids = this.#scriptsToForget;
    this.#scriptsToForget = [];
    this.#worker.postMessage({ type: 'forget-scripts', ids });
  }

  /** Drops a cached `using` value in the runspace once its loop is over. */
  forgetUsing(usingId: number): void {
    if (!this.#knownUsings.delete(usingId) || this.#phase === 'exited') return;
    this.#worker.postMessage({ type: 'forget', usingId });
  }

  #unstage(task: Task): void {
    task.requeue();
    this.pendingNs -= task.spec.cost.ns;
  }

  #markScriptKnown(task: Task): void {
    const { fn } = task.spec;
    if (fn.kind === 'script' && this.#knownScripts.get(fn.id) === undefined) {
      for (const id of this.#knownScripts.set(fn.id, true)) this.#scriptsToForget.push(id);
    }
    if (task.spec.usingId !== undefined) this.#knownUsings.add(task.spec.usingId);
  }

  #setReferenced(referenced: boolean): void {
    if (this.#referenced === referenced || this.#phase === 'exited') return;
    this.#referenced = referenced;
    if (referenced) this.#worker.ref();
    else this.#worker.unref();
  }

  #onMessage = (message: FromRunspace): void => {
    switch (message.type) {
      case 'results': {
        this.lastProgressAt = performance.now();
        for (const result of message.results) {
          // A call taken back (reclaimUnstarted) left inFlight then; its skip frees its slot.
          if (!result.ok && result.reclaimed === true) {
            this.#markedSlots.delete(cancelSlot(result.seq));
            continue;
          }
          // Calls running side by side finish in any order; one at a time, in send order.
          const task = this.inFlight.peek()!.seq === result.seq ? this.inFlight.shift()! : this.inFlight.take((t) => t.seq === result.seq)!;
          this.pendingNs -= task.spec.cost.ns;
          this.#events.taskDone(this, task, result);
        }
        // An idle runspace must not keep the process alive; a busy one must.
        if (this.inFlight.length === 0) {
          this.pendingNs = 0;
          this.#setReferenced(false);
        }
        this.#events.progressed(this);
        return;
      }
      case 'record':
        this.#events.record(this, this.#inFlightTask(message.seq), decodeRecord(message.record));
        return;
      case 'partial': {
        const task = this.#inFlightTask(message.seq);
        if (task !== undefined) this.#events.partial(this, task, message.outcome);
        return;
      }
      case 'item-started': {
        const task = this.#inFlightTask(message.seq);
        if (task !== undefined) this.#events.itemStarted(this, task, message.index);
        return;
      }
      case 'released':
        noteReleased(this.id, message.cells);
        return;
      case 'ready':
        this.#ready = true;
        this.#setReferenced(this.inFlight.length > 0);
        this.#settleOpened(true);
        this.#events.ready(this, message.openErrors.map(deserializeError));
        return;
    }
  };

  #inFlightTask(seq: number): Task | undefined {
    for (const task of this.inFlight) if (task.seq === seq) return task;
    return undefined;
  }

  #onExit(exitCode: number): void {
    const duringOpen = !this.#ready;
    const phaseBefore = this.#phase === 'retiring' ? this.#retiredFrom! : this.#phase;
    this.moveTo('exited');
    this.#settleOpened(false);
    const started = Atomics.load(this.control, ControlSlot.Started);
    const itemsStarted = Atomics.load(this.control, ControlSlot.ItemsStarted);
    const lost: Task[] = [];
    const unstarted: Task[] = [];
    for (const task of this.inFlight.drain()) {
      if (task.seq > started) {
        unstarted.push(task);
        continue;
      }
      const running = task.seq === started;
      task.lostAfter(running ? itemsStarted : (task.spec.chunk?.items.length ?? 0), running);
      lost.push(task);
    }
    this.pendingNs = 0;
    const reason = this.#intendedReason ?? describeExit(this.#error);
    this.#exitError = new RunspaceBrokenError(this.id, exitCode, reason, { cause: this.#error });
    // Objects living in this runspace are gone: calls waiting on them, and later ones, fail.
    this.link.close(this.#exitError);
    this.#events.exited(this, {
      exitCode,
      error: this.#error,
      intended: this.#intendedReason !== undefined,
      duringOpen,
      reason,
      phaseBefore,
    }, lost, unstarted);
  }
}

/**
 * A task whose message could not be sent: rejected with the error that names
 * the value that cannot cross. When that value is one of a chunk's items, the
 * task says so, and the loop tries each item alone.
 */
function rejectUnsent(task: Task, error: unknown): void {
  const { spec } = task;
  const refused = (error as { [REFUSED_VALUE]?: Refusal } | null)?.[REFUSED_VALUE];
  const found =
    findUncloneable(spec.using, 'using', 'using', refused) ??
    findUncloneable(spec.args, 'args', 'value', refused) ??
    (spec.input === undefined ? undefined : findUncloneable(spec.input, 'input', 'value', refused)) ??
    (spec.fn.kind === 'setVariable' ? findUncloneable(spec.fn.value, `variable '${spec.fn.name}'`, 'value', refused) : undefined);
  if (found !== undefined) {
    task.reject(found);
    return;
  }
  const chunk = spec.chunk;
  for (let i = 0; chunk !== undefined && i < chunk.items.length; i++) {
    const item = findUncloneable(chunk.items[i], `input[${chunk.firstIndex + i}]`, 'value', refused);
    if (item !== undefined) {
      task.rejectUncloneableItem(i, item);
      return;
    }
  }
  task.reject(error instanceof Error && error.name === 'DataCloneError' ? new UncloneableValueError('a value', error.message, { cause: error }) : error);
}

function describeExit(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === 'ERR_WORKER_OUT_OF_MEMORY') return 'out of memory';
  // The package was bundled into an application: its worker file is not where its code now runs from.
  if ((code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') && error instanceof Error && error.message.includes(WORKER_URL.pathname)) {
    return `the runspace's worker file is missing (${WORKER_URL.pathname}). If you bundle your application, keep 'runspaces' external (esbuild: --packages=external or --external:runspaces).`;
  }
  if (error instanceof Error) return `uncaught exception: ${error.message}`;
  if (error !== undefined) return `uncaught exception: ${String(error)}`;
  return 'process.exit() was called';
}
