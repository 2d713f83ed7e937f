/**
 * The pool's side of one runspace: its worker thread, the tasks sent to it
 * and not yet answered (in send order), and the bookkeeping to tell, when the
 * worker dies, exactly which of those tasks had started (lost) and which had
 * not (safe to run elsewhere).
 *
 * @module
 */

import { MessageChannel, Worker, type ResourceLimits, type TransferListItem } from 'node:worker_threads';
import { AffinityLink } from '../affinity/link.js';
import { RunspaceBrokenError } from '../errors.js';
import { findUncloneable } from '../protocol/clone-check.js';
import { deserializeError } from '../protocol/error-codec.js';
import {
  CONTROL_SLOTS,
  ControlSlot,
  cancelSlot,
  type CancelKind,
  type FromRunspace,
  type RunspaceBoot,
  type ScriptDefinition,
  type WireResult,
  type WireTask,
} from '../protocol/messages.js';
import { decodeRecord, type StreamRecord } from '../protocol/stream-records.js';
import { syncArena } from '../sync/arena.js';
import { Fifo } from './fifo.js';
import type { Task } from './task.js';

// One file, built from runspace/worker.ts by `npm run build`: Node's ESM loader
// pays about a millisecond per module, and every runspace pays it at startup.
const WORKER_URL = new URL('../runspace/worker.bundle.js', import.meta.url);

/**
 * Workers inherit the process's Node flags, but a few only make sense for the
 * main entry point and make a worker fail at start (`node --input-type=module -e ...`).
 * Undefined when there are none: then the worker inherits the flags, which
 * accepts V8 flags such as `--expose-gc` that an explicit list refuses.
 */
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
}

export interface HostEvents {
  ready(host: RunspaceHost, openErrors: readonly unknown[]): void;
  taskDone(host: RunspaceHost, task: Task, result: WireResult): void;
  /** After a batch of results: capacity was freed. */
  progressed(host: RunspaceHost): void;
  record(host: RunspaceHost, task: Task | undefined, record: StreamRecord): void;
  /** `lost`: tasks that had started (their outcome is unknown); `unstarted`: never began. */
  exited(host: RunspaceHost, info: ExitInfo, lost: Task[], unstarted: Task[]): void;
}

export interface HostOptions {
  readonly variables: Readonly<Record<string, unknown>>;
  readonly modules: readonly string[];
  readonly startup: readonly ScriptDefinition[];
  readonly resourceLimits: ResourceLimits | undefined;
  readonly spinBeforeSleepUs: number;
}

export type HostStatus = 'opening' | 'open' | 'exited';

export class RunspaceHost {
  readonly id: number;
  readonly control: Int32Array;
  /** Carries calls on objects with runspace affinity, both ways. */
  readonly link: AffinityLink;
  readonly inFlight = new Fifo<Task>();
  /** Settles when the worker has exited. */
  readonly exited: Promise<void>;
  /** Settles true once the runspace is ready, false if it stopped before. */
  readonly opened: Promise<boolean>;
  #settleOpened!: (ready: boolean) => void;
  status: HostStatus = 'opening';
  /** Owned by a `Runspace` handle: the pool schedules nothing else here. */
  acquired = false;
  /** Opened for one call alone (`useNewRunspace`) and closed after it; outside min, max and the idle stack. */
  dedicated = false;
  /** Estimated nanoseconds of work sent and not yet answered. */
  pendingNs = 0;
  /** Timer that trims this runspace when it stays idle. */
  idleTimer: NodeJS.Timeout | undefined;
  readonly #worker: Worker;
  readonly #events: HostEvents;
  readonly #knownScripts = new Set<number>();
  readonly #knownUsings = new Set<number>();
  #nextSeq = 1;
  #error: unknown;
  #intendedReason: string | undefined;
  #referenced = true;

  constructor(options: HostOptions, events: HostEvents) {
    this.#events = events;
    const control = new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT);
    this.control = new Int32Array(control);
    const affinity = new MessageChannel();
    const boot: RunspaceBoot = {
      control,
      variables: options.variables,
      modules: options.modules,
      startup: options.startup,
      spinBeforeSleepUs: options.spinBeforeSleepUs,
      syncArena: syncArena(),
      affinityPort: affinity.port2,
    };
    this.#worker = new Worker(WORKER_URL, {
      workerData: boot,
      transferList: [affinity.port2],
      resourceLimits: options.resourceLimits,
      execArgv: workerExecArgv(),
    });
    // Captured now: `threadId` reads -1 once the worker has exited.
    this.id = this.#worker.threadId;
    this.link = new AffinityLink(affinity.port1, this.id);
    this.opened = new Promise((resolve) => {
      this.#settleOpened = resolve;
    });
    this.#worker.on('message', this.#onMessage);
    this.#worker.on('error', (error) => {
      this.#error = error;
    });
    this.exited = new Promise((resolve) => {
      this.#worker.once('exit', (exitCode) => {
        this.#onExit(exitCode);
        resolve();
      });
    });
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
    this.#setReferenced(true);
  }

  /** Asks the running or waiting task to stop: shared flag first, then a message. */
  cancel(task: Task, kind: CancelKind): void {
    if (this.status === 'exited' || task.host !== this) return;
    Atomics.store(this.control, cancelSlot(task.seq), task.seq);
    this.#worker.postMessage({ type: 'cancel', seq: task.seq, kind });
  }

  /** True when the runspace has begun (or finished) running `task`. */
  hasStarted(task: Task): boolean {
    return Atomics.load(this.control, ControlSlot.Started) >= task.seq;
  }

  /** True once the pool decided to end this runspace (it may not have exited yet). */
  get retiring(): boolean {
    return this.#intendedReason !== undefined;
  }

  /** Ends the worker now; in-flight work is reported through `exited` with `reason`. */
  terminate(reason: string): Promise<void> {
    this.#intendedReason ??= reason;
    void this.#worker.terminate();
    return this.exited;
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
      task.reject(
        findUncloneable(task.spec.using, 'using') ??
          findUncloneable(task.spec.args, 'args') ??
          (task.spec.input === undefined ? undefined : findUncloneable(task.spec.input, 'input')) ??
          (task.spec.chunk === undefined ? undefined : findUncloneable(task.spec.chunk.items, 'items')) ??
          (task.spec.fn.kind === 'setVariable' ? findUncloneable(task.spec.fn.value, `variable '${task.spec.fn.name}'`) : undefined) ??
          error,
      );
      return;
    }
    this.#markScriptKnown(task);
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
      task.reject(error);
      return undefined;
    }
    task.host = this;
    task.seq = this.#nextSeq++;
    task.state = 'dispatched';
    task.dispatchedAt = performance.now();
    this.pendingNs += task.spec.cost.ns;
    this.inFlight.push(task);
    return wire;
  }

  #encode(task: Task, seq: number): WireTask {
    const { fn, definition } = task.spec;
    const link = this.link;
    const copiesBefore = link.copiesEncoded;
    const ref = fn.kind === 'script' && definition !== undefined && !this.#knownScripts.has(fn.id)
      ? { ...fn, definition }
      : fn.kind === 'setVariable' ? { ...fn, value: link.encode(fn.value) } : fn;
    const { usingId, chunk, input } = task.spec;
    const using = task.spec.using === undefined || (usingId !== undefined && this.#knownUsings.has(usingId))
      ? undefined
      : (link.encode(task.spec.using) as Readonly<Record<string, unknown>>);
    const wire: WireTask = { seq, fn: ref, args: link.encodeArgs(task.spec.args), using };
    if (usingId === undefined && chunk === undefined && input === undefined && link.copiesEncoded === copiesBefore) return wire;
    return {
      ...wire,
      usingId,
      chunk: chunk === undefined ? undefined : { ...chunk, items: link.encodeArgs(chunk.items) },
      input: input === undefined ? undefined : link.encodeArgs(input),
      loadsClasses: link.copiesEncoded !== copiesBefore,
    };
  }

  /** Drops a cached `using` value in the runspace once its loop is over. */
  forgetUsing(usingId: number): void {
    if (!this.#knownUsings.delete(usingId) || this.status === 'exited') return;
    this.#worker.postMessage({ type: 'forget', usingId });
  }

  #unstage(task: Task): void {
    task.host = undefined;
    task.seq = 0;
    task.state = 'queued';
    this.pendingNs -= task.spec.cost.ns;
  }

  #markScriptKnown(task: Task): void {
    if (task.spec.fn.kind === 'script') this.#knownScripts.add(task.spec.fn.id);
    if (task.spec.usingId !== undefined) this.#knownUsings.add(task.spec.usingId);
  }

  #setReferenced(referenced: boolean): void {
    if (this.#referenced === referenced || this.status === 'exited') return;
    this.#referenced = referenced;
    if (referenced) this.#worker.ref();
    else this.#worker.unref();
  }

  #onMessage = (message: FromRunspace): void => {
    switch (message.type) {
      case 'results': {
        for (const result of message.results) {
          const task = this.inFlight.shift()!;
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
      case 'record': {
        let owner: Task | undefined;
        for (const task of this.inFlight) {
          if (task.seq === message.seq) {
            owner = task;
            break;
          }
        }
        this.#events.record(this, owner, decodeRecord(message.record));
        return;
      }
      case 'ready':
        this.status = 'open';
        this.#setReferenced(this.inFlight.length > 0);
        this.#settleOpened(true);
        this.#events.ready(this, message.openErrors.map(deserializeError));
        return;
    }
  };

  #onExit(exitCode: number): void {
    const duringOpen = this.status === 'opening';
    this.status = 'exited';
    this.#settleOpened(false);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const started = Atomics.load(this.control, ControlSlot.Started);
    const itemsStarted = Atomics.load(this.control, ControlSlot.ItemsStarted);
    const lost: Task[] = [];
    const unstarted: Task[] = [];
    for (const task of this.inFlight.drain()) {
      if (task.seq > started) {
        unstarted.push(task);
        continue;
      }
      task.itemsStarted = task.seq === started ? itemsStarted : (task.spec.chunk?.items.length ?? 0);
      lost.push(task);
    }
    this.pendingNs = 0;
    const reason = this.#intendedReason ?? describeExit(this.#error);
    // Objects living in this runspace are gone: calls waiting on them, and later ones, fail.
    this.link.close(new RunspaceBrokenError(this.id, exitCode, reason, { cause: this.#error }));
    this.#events.exited(this, {
      exitCode,
      error: this.#error,
      intended: this.#intendedReason !== undefined,
      duringOpen,
      reason,
    }, lost, unstarted);
  }
}

function describeExit(error: unknown): string {
  if ((error as { code?: unknown } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY') return 'out of memory';
  if (error instanceof Error) return `uncaught exception: ${error.message}`;
  if (error !== undefined) return `uncaught exception: ${String(error)}`;
  return 'process.exit() was called';
}
