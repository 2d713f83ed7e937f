/**
 * The loop inside a runspace: runs the tasks the pool sends, one at a time, in
 * the order they were sent, and reports results in that same order.
 *
 * One at a time is the runspace model: a runspace's session is never touched
 * by two calls at once. A pool opened with `concurrency` above 1 lets calls
 * that await run side by side, up to that many: they still start in send
 * order, but finish (and report) in any order, and a parallel loop's chunk
 * waits for them all and runs alone. Results of quick tasks are buffered and posted
 * together (a message costs far more than a tiny task), but never held past
 * about a millisecond, never past the moment a task awaits, and always flushed
 * before a stream record, so records arrive before the result they precede.
 *
 * @module
 */

import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { AffinityLink, MessageEncoder } from '../affinity/link.js';
import { ModuleExportError } from '../errors.js';
import { findUncloneable } from '../protocol/clone-check.js';
import { serializeError, type SerializedError } from '../protocol/error-codec.js';
import {
  type ScriptDefinition,
  cancelSlot,
  reclaimMark,
  ControlSlot,
  type ChunkOutcome,
  type FromRunspace,
  type FunctionRef,
  type ToRunspace,
  type WireChunk,
  type WireResult,
  type WireTask,
} from '../protocol/messages.js';
import type { WireRecord } from '../protocol/stream-records.js';
import { TaskContext, type ContextHost } from './context.js';
import { installContextSource } from './current-context.js';
import { compileScript, type CompiledScript } from './script-block.js';
import type { SessionState } from './session-state.js';
import type { SpinPolicy } from './spin-policy.js';

const FLUSH_INTERVAL_MS = 1;
/**
 * A long chunk sends the outputs of its finished items ahead of its result
 * once this much time passed and at least {@link PARTIAL_MIN_ITEMS} items
 * finished, or after {@link PARTIAL_MAX_MS} whatever the count: a crash then
 * loses at most that much finished work, and slow items (about a
 * millisecond each) do not cost a message apiece.
 */
export const PARTIAL_FLUSH_MS = 1;
export const PARTIAL_MIN_ITEMS = 8;
export const PARTIAL_MAX_MS = 8;
const EMPTY_USING: Readonly<Record<string, unknown>> = Object.freeze({});

type Importer = (specifier: string) => Promise<unknown>;

interface PendingTask {
  readonly wire: WireTask;
  /** Its script block, looked up when it arrived: a later `forget-scripts` cannot take it away. */
  readonly script: ScriptEntry | undefined;
  cancelKind?: 'abort' | 'timeout';
}

/** A script block this runspace was sent, compiled on first run. */
interface ScriptEntry {
  readonly definition: ScriptDefinition;
  compiled?: CompiledScript;
}

export class TaskLoop implements ContextHost {
  readonly #port: MessagePort;
  readonly #import: Importer;
  readonly #scripts = new Map<number, ScriptEntry>();
  readonly #moduleFunctions = new Map<string, CompiledScript>();
  #queue: (PendingTask | undefined)[] = [];
  #head = 0;
  #running = false;
  #results: WireResult[] = [];
  #current: TaskContext | undefined;
  readonly #concurrency: number;
  /** Calls started and still awaiting, when several may run at once; by seq, for cancellation. */
  readonly #alongside = new Map<number, TaskContext>();
  /** Wakes the drain waiting for a call running alongside to finish. */
  #slotFreed: (() => void) | undefined;
  /**
   * Which call's context code is in after an await, when calls interleave.
   * Only then: it makes every promise on the thread pay for tracking.
   */
  readonly #contexts: AsyncLocalStorage<TaskContext> | undefined;
  /** `using` values of parallel loops, kept until the pool says the loop is over. */
  readonly #usings = new Map<number, Readonly<Record<string, unknown>>>();
  /** Loop index of the first item of each chunk outcome, to name an uncloneable output. */
  readonly #chunkStarts = new WeakMap<ChunkOutcome, number>();
  readonly #spin: SpinPolicy;

  constructor(
    port: MessagePort,
    importFromWorker: Importer,
    readonly runspaceId: number,
    readonly session: SessionState,
    readonly modules: readonly Record<string, unknown>[],
    readonly control: Int32Array,
    spin: SpinPolicy,
    readonly link: AffinityLink,
    concurrency = 1,
  ) {
    this.#port = port;
    this.#spin = spin;
    this.#import = importFromWorker;
    this.#concurrency = concurrency;
    const contexts = concurrency > 1 ? new AsyncLocalStorage<TaskContext>() : undefined;
    this.#contexts = contexts;
    installContextSource(contexts === undefined ? () => this.#current : () => contexts.getStore() ?? this.#current);
  }

  receive = (message: ToRunspace): void => {
    if (message.type === 'run') {
      for (const wire of message.tasks) this.#queue.push({ wire, script: this.#scriptOf(wire.fn) });
      if (!this.#running) void this.#drain();
      return;
    }
    if (message.type === 'forget') {
      this.#usings.delete(message.usingId);
      return;
    }
    if (message.type === 'forget-scripts') {
      for (const id of message.ids) this.#scripts.delete(id);
      return;
    }
    const running = this.#current?.seq === message.seq ? this.#current : this.#alongside.get(message.seq);
    if (running !== undefined) {
      running.cancel(message.kind);
      return;
    }
    for (let i = this.#head; i < this.#queue.length; i++) {
      const task = this.#queue[i];
      if (task?.wire.seq === message.seq) task.cancelKind = message.kind;
    }
  };

  /** Compiles a startup script and runs it with a context of its own. */
  async runStartup(compiled: CompiledScript): Promise<void> {
    await compiled(new TaskContext(0, EMPTY_USING, this));
  }

  compile = (definition: Parameters<typeof compileScript>[0]): CompiledScript => compileScript(definition, this.#import);

  postRecord(seq: number, record: WireRecord): void {
    this.#flush();
    this.#post({ type: 'record', seq, record });
  }

  /**
   * Runs queued tasks until none are left and lingering brings no more. The
   * tasks lingering brings run in this same loop, not in a fresh drain: a
   * runspace kept busy by quick calls would otherwise nest one drain inside
   * another at each idle moment until its stack overflowed.
   */
  async #drain(): Promise<void> {
    this.#running = true;
    do {
      await this.#runQueued();
      this.#queue = [];
      this.#head = 0;
      this.#flush();
    } while (this.#lingerForWork());
    this.#running = false;
  }

  async #runQueued(): Promise<void> {
    let flushAt = performance.now() + FLUSH_INTERVAL_MS;
    while (this.#head < this.#queue.length) {
      const task = this.#queue[this.#head]!;
      if (this.#concurrency > 1) await this.#slotFor(task.wire);
      this.#queue[this.#head++] = undefined;
      const { seq } = task.wire;
      Atomics.store(this.control, ControlSlot.ItemsStarted, 0);
      Atomics.store(this.control, ControlSlot.Started, seq);
      const started = performance.now();
      // The flag is read too: the cancel message may still sit unread behind this loop.
      const flag = Atomics.load(this.control, cancelSlot(seq));
      if (task.cancelKind !== undefined || flag === seq) {
        this.#results.push({ seq, ok: false, error: serializeError(new Error('cancelled before it started')), runNs: 0, cancelled: true });
        continue;
      }
      // Taken back by the pool while this runspace was stuck on an earlier call: it runs elsewhere.
      // (Read after `Started` is written, so the pool, which writes the mark and then reads
      // `Started`, knows for sure whether the task was taken back or had begun.)
      if (flag === reclaimMark(seq)) {
        this.#results.push({ seq, ok: false, error: serializeError(new Error('taken back by the pool')), runNs: 0, reclaimed: true });
        continue;
      }
      const link = this.link;
      if (task.wire.loadsClasses) {
        try {
          this.#flush();
          await this.#importCopiedClasses(task.wire);
        } catch (error) {
          this.#results.push({ seq, ok: false, error: serializeError(error), runNs: Math.round((performance.now() - started) * 1e6) });
          continue;
        }
      }
      let context: TaskContext;
      try {
        context = new TaskContext(seq, this.#using(task.wire), this, task.wire.input === undefined ? undefined : link.decodeArgs(task.wire.input));
      } catch (error) {
        this.#results.push({ seq, ok: false, error: serializeError(error), runNs: 0 });
        continue;
      }
      this.#current = context;
      try {
        if (task.wire.chunk !== undefined) {
          const { outcome, loadsClasses } = await this.#runChunk(task, task.wire.chunk, context);
          this.#results.push({ seq, ok: true, value: outcome, runNs: Math.round((performance.now() - started) * 1e6), loadsClasses });
          this.#current = undefined;
          continue;
        }
        let value = this.#contexts === undefined ? this.#call(task, context) : this.#contexts.run(context, () => this.#call(task, context));
        if (value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function') {
          this.#flush();
          if (this.#concurrency > 1) {
            this.#runAlongside(seq, value as PromiseLike<unknown>, context, started);
            this.#current = undefined;
            continue;
          }
          value = await value;
        }
        this.#results.push(this.#callResult(seq, started, context, true, value));
      } catch (error) {
        this.#results.push(this.#callResult(seq, started, context, false, error));
      }
      this.#current = undefined;
      const now = performance.now();
      if (now >= flushAt) {
        this.#flush();
        flushAt = now + FLUSH_INTERVAL_MS;
      }
    }
  }

  /**
   * With calls running side by side: waits until another may start, or, for
   * a chunk, until none runs (a chunk runs alone: its crash accounting counts
   * the items of the one task running).
   */
  async #slotFor(wire: WireTask): Promise<void> {
    const limit = wire.chunk === undefined ? this.#concurrency : 1;
    while (this.#alongside.size >= limit) {
      this.#flush();
      await new Promise<void>((resolve) => (this.#slotFreed = resolve));
    }
  }

  /** Lets a call that awaits finish on its own while the next ones start; its result goes out as soon as it settles. */
  #runAlongside(seq: number, value: PromiseLike<unknown>, context: TaskContext, started: number): void {
    this.#alongside.set(seq, context);
    const settle = (result: WireResult): void => {
      this.#alongside.delete(seq);
      this.#results.push(result);
      this.#flush();
      const wake = this.#slotFreed;
      this.#slotFreed = undefined;
      wake?.();
    };
    Promise.resolve(value).then(
      (resolved) => settle(this.#callResult(seq, started, context, true, resolved)),
      (error: unknown) => settle(this.#callResult(seq, started, context, false, error)),
    );
  }

  /** The result of a call that returned `outcome` (encoded here; a value that cannot be encoded fails it) or threw it. */
  #callResult(seq: number, started: number, context: TaskContext, returned: boolean, outcome: unknown): WireResult {
    const runNs = Math.round((performance.now() - started) * 1e6);
    if (returned) {
      const encoder = this.link.encoder();
      try {
        return { seq, ok: true, value: encoder.encode(outcome), runNs, loadsClasses: encoder.loadsClasses };
      } catch (error) {
        outcome = error;
      }
    }
    return { seq, ok: false, error: serializeError(outcome), runNs, cancelled: context.cancelled };
  }

  /**
   * Waking a sleeping thread costs tens of microseconds, paid on every awaited
   * call. A caller awaiting results one at a time sends the next call right
   * after the last result lands, so the runspace polls its port for a short
   * moment before it sleeps; the next call then finds it awake.
   * @returns whether what it received queued work.
   */
  #lingerForWork(): boolean {
    const spin = this.#spin;
    // Polling blocks this thread: calls still awaiting would not get to finish.
    if (this.#alongside.size > 0 || !spin.shouldPoll()) return false;
    const deadline = performance.now() + spin.budgetMs;
    do {
      const received = receiveMessageOnPort(this.#port);
      if (received !== undefined) {
        spin.polled(true);
        this.receive(received.message as ToRunspace);
        return this.#head < this.#queue.length;
      }
    } while (performance.now() < deadline);
    spin.polled(false);
    return false;
  }

  /** Imports the modules of `NoRunspaceAffinity` classes the task's values copy, before they are decoded. */
  async #importCopiedClasses(wire: WireTask): Promise<void> {
    const roots: unknown[] = [wire.using, ...wire.args, ...(wire.input ?? []), ...(wire.chunk?.items ?? [])];
    if (wire.fn.kind === 'setVariable') roots.push(wire.fn.value);
    await this.link.prepare(roots);
  }

  #using(wire: WireTask): Readonly<Record<string, unknown>> {
    if (wire.usingId === undefined) {
      return wire.using === undefined ? EMPTY_USING : (this.link.decode(wire.using) as Readonly<Record<string, unknown>>);
    }
    let using = this.#usings.get(wire.usingId);
    if (wire.using !== undefined || using === undefined) {
      using = wire.using === undefined ? EMPTY_USING : (this.link.decode(wire.using) as Readonly<Record<string, unknown>>);
      this.#usings.set(wire.usingId, using);
    }
    return using;
  }

  /**
   * Runs a chunk's items one by one. An item's failure is recorded, not
   * thrown; only an item that returned a promise is awaited. An item that
   * fails because it was cancelled is not a failure of the item: the chunk
   * just stops.
   *
   * Outputs are sent back in parts when the chunk runs long: before an item
   * starts, outputs older than {@link PARTIAL_FLUSH_MS} go out in a `partial`
   * message, so a runspace that dies mid-chunk (`process.exit`, an uncaught
   * exception, out of memory, recycled for ignoring its signal) loses at
   * most that much finished work besides the item it was running. The clock
   * is read every item for slow items, every few dozen for trivial ones.
   */
  async #runChunk(task: PendingTask, chunk: WireChunk, context: TaskContext): Promise<{ outcome: ChunkOutcome; loadsClasses: boolean }> {
    const fn = await this.#resolve(task);
    const withContext = !(task.wire.fn.kind === 'module' && task.wire.fn.withContext === false);
    const { items, firstIndex, stopOnError, reportStarts } = chunk;
    const control = this.control;
    let part = new ChunkPart(0, this.link.encoder());
    let stride = 1;
    let sinceCheck = 0;
    let checkedAt = part.startedAt;
    for (let i = 0; i < items.length; i++) {
      if (context.cancellationRequested) break;
      // Item 0 has nothing before it to measure or send.
      if (i > 0 && ++sinceCheck >= stride) {
        const now = performance.now();
        const perItemMs = (now - checkedAt) / sinceCheck;
        stride = perItemMs < 0.001 ? 32 : perItemMs < 0.02 ? 4 : 1;
        sinceCheck = 0;
        checkedAt = now;
        const age = now - part.startedAt;
        const due = age >= PARTIAL_MAX_MS || (age >= PARTIAL_FLUSH_MS && part.values.length >= PARTIAL_MIN_ITEMS);
        if (due && part.values.length > 0 && !part.encoder.loadsClasses) {
          this.#postPartial(task.wire.seq, part.outcome(now), firstIndex);
          part = new ChunkPart(i, this.link.encoder());
        }
      }
      Atomics.store(control, ControlSlot.ItemsStarted, i + 1);
      context.index = firstIndex + i;
      if (reportStarts === true) {
        this.#flush();
        this.#post({ type: 'item-started', seq: task.wire.seq, index: firstIndex + i });
      }
      try {
        const item = this.link.decode(items[i]);
        let value = withContext ? (fn as (item: unknown, ctx: TaskContext) => unknown)(item, context) : (fn as (item: unknown) => unknown)(item);
        if (value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function') {
          this.#flush();
          value = await value;
        }
        part.values.push(part.encoder.encode(value));
      } catch (error) {
        if (context.cancelled) break;
        part.values.push(undefined);
        part.failures.push([part.values.length - 1, serializeError(error)]);
        if (stopOnError) break;
      }
    }
    context.index = undefined;
    const outcome = part.outcome(performance.now());
    this.#chunkStarts.set(outcome, firstIndex + outcome.from);
    return { outcome, loadsClasses: part.encoder.loadsClasses };
  }

  #postPartial(seq: number, outcome: ChunkOutcome, firstIndex: number): void {
    // Results of earlier tasks go first: the pool reads messages in order.
    this.#flush();
    try {
      this.#post({ type: 'partial', seq, outcome });
    } catch {
      this.#chunkStarts.set(outcome, firstIndex + outcome.from);
      this.#post({ type: 'partial', seq, outcome: this.#withoutUncloneable(outcome) });
    }
  }

  #call(task: PendingTask, context: TaskContext): unknown {
    const fn = this.#resolve(task);
    const args = this.link.decodeArgs(task.wire.args);
    const withContext = !(task.wire.fn.kind === 'module' && task.wire.fn.withContext === false);
    const call = (loaded: CompiledScript): unknown => (withContext ? loaded(context, ...args) : loaded(...args));
    return typeof fn === 'function' ? call(fn) : fn.then(call);
  }

  /** The script block a task names, from the definition it brought or the one kept for its id. */
  #scriptOf(ref: FunctionRef): ScriptEntry | undefined {
    if (ref.kind !== 'script') return undefined;
    if (ref.definition === undefined) return this.#scripts.get(ref.id);
    const entry: ScriptEntry = { definition: ref.definition };
    this.#scripts.set(ref.id, entry);
    return entry;
  }

  #resolve(task: PendingTask): CompiledScript | Promise<CompiledScript> {
    const ref = task.wire.fn;
    switch (ref.kind) {
      case 'script': {
        const script = task.script;
        if (script === undefined) throw new Error(`runspace has no script block ${ref.id} (internal error)`);
        return (script.compiled ??= this.compile(script.definition));
      }
      case 'module': {
        const key = `${ref.module}#${ref.export}`;
        return this.#moduleFunctions.get(key) ?? this.#loadModuleFunction(ref.module, ref.export, key);
      }
      case 'getVariable':
        return () => this.session.get(ref.name);
      case 'setVariable':
        return () => {
          this.session.set(ref.name, this.link.decode(ref.value));
        };
    }
  }

  async #loadModuleFunction(module: string, exportName: string, key: string): Promise<CompiledScript> {
    let namespace: Record<string, unknown>;
    try {
      namespace = (await this.#import(module)) as Record<string, unknown>;
    } catch (error) {
      throw new ModuleExportError(module, exportName, `Could not import ${module}: ${(error as Error).message}`, { cause: error });
    }
    const fn = namespace[exportName];
    if (typeof fn !== 'function') {
      throw new ModuleExportError(
        module,
        exportName,
        `${module} has no exported function '${exportName}' (found ${fn === undefined ? 'nothing' : typeof fn}). Exported names: ${Object.keys(namespace).join(', ') || 'none'}.`,
      );
    }
    this.#moduleFunctions.set(key, fn as CompiledScript);
    return fn as CompiledScript;
  }

  #flush(): void {
    if (this.#results.length === 0) return;
    const results = this.#results;
    this.#results = [];
    try {
      this.#post({ type: 'results', results });
    } catch {
      // One result could not be cloned: send them one by one so only it fails.
      for (const result of results) {
        try {
          this.#post({ type: 'results', results: [result] });
        } catch (error) {
          if (result.ok && this.#chunkStarts.has(result.value as ChunkOutcome)) {
            this.#post({ type: 'results', results: [{ ...result, value: this.#withoutUncloneable(result.value as ChunkOutcome) }] });
            continue;
          }
          const found = result.ok ? findUncloneable(result.value, 'the result') : undefined;
          this.#post({ type: 'results', results: [{ seq: result.seq, ok: false, error: serializeError(found ?? error), runNs: result.runNs }] });
        }
      }
    }
  }

  /** The outcome with each output that cannot cross turned into that item's failure. */
  #withoutUncloneable(outcome: ChunkOutcome): ChunkOutcome {
    const firstIndex = this.#chunkStarts.get(outcome)!;
    const values = [...outcome.values];
    const failures = [...outcome.failures];
    for (let i = 0; i < values.length; i++) {
      const found = findUncloneable(values[i], `the output of item ${firstIndex + i}`);
      if (found === undefined) continue;
      values[i] = undefined;
      failures.push([i, serializeError(found)]);
    }
    return { ...outcome, values, failures };
  }

  #post(message: FromRunspace): void {
    this.#port.postMessage(message);
  }
}

/** The outcomes of a chunk's items since its last part was sent. */
class ChunkPart {
  readonly values: unknown[] = [];
  readonly failures: [number, SerializedError][] = [];
  readonly startedAt = performance.now();

  constructor(readonly from: number, readonly encoder: MessageEncoder) {}

  outcome(now: number): ChunkOutcome {
    return { from: this.from, values: this.values, failures: this.failures, done: this.values.length, runNs: Math.round((now - this.startedAt) * 1e6) };
  }
}
