/**
 * The pool core: its open/close state machine and the calls it accepts
 * (`invoke`, `acquire`, calls pinned to one runspace, and the loop layer's
 * submissions). Which runspace runs what is the {@link Scheduler}'s job;
 * what happens when a runspace reports is the {@link Supervisor}'s.
 *
 * @module
 */

import { InvalidPoolStateError, OperationCancelledError, PoolClosedError, PoolQueueFullError, TimeoutError } from '../errors.js';
import type { CancelKind } from '../protocol/messages.js';
import { onCancel, startTimer, timeoutMs } from '../util/deadline.js';
import { asArgumentError, cancelOptions } from '../util/options.js';
import { AcquireRequest } from './acquire-request.js';
import { buildTaskSpec, readInvokeOptions, variableSpec, type InvokeOptions, type ModuleFunction } from './invocation.js';
import type { LoopPool, SubmitOptions } from './loop-pool.js';
import { assertRunspaceCount, isValidCount, normalizePoolOptions, type NormalizedPoolOptions, type RunspacePoolOptions } from './options.js';
import type { AcquireOptions, EmitPoolEvent, RunspacePoolState } from './pool-events.js';
import { StatsRecorder, type PoolStats } from './pool-stats.js';
import { Runspace, type RunspaceOwner } from './runspace.js';
import { RunspaceHost } from './runspace-host.js';
import { Scheduler, SPAWNS_PER_TURN, type PoolTask } from './scheduler.js';
import { callerFileUrl, scriptFor } from './script-registry.js';
import { Supervisor } from './supervisor.js';
import { Task, type TaskSpec, type TaskView } from './task.js';

export class PoolCore {
  readonly #options: NormalizedPoolOptions;
  readonly #startup;
  readonly #emit: EmitPoolEvent;
  readonly #stats = new StatsRecorder();
  readonly #scheduler: Scheduler;
  readonly #supervisor: Supervisor;
  #state: RunspacePoolState = 'BeforeOpen';
  #destroying = false;
  #openPromise: Promise<void> | undefined;
  #closePromise: Promise<void> | undefined;
  #drained: (() => void) | undefined;
  #brokenReason: Error | undefined;

  /** Validates options now; `callerFile` resolves relative module paths (called only while the caller is on the stack). */
  constructor(options: RunspacePoolOptions, emit: EmitPoolEvent, callerFile: () => string | null = callerFileUrl) {
    this.#options = normalizePoolOptions(options, callerFile);
    this.#startup = this.#options.startup.map((fn) => scriptFor(fn, undefined, 'startup script').definition);
    this.#emit = emit;
    const options_ = this.#options;
    const stats = this.#stats;
    this.#scheduler = new Scheduler({
      options: options_,
      stats,
      serving: () => this.#state === 'Opened' || this.#state === 'Opening',
      closing: () => this.#state === 'Closing' || this.#state === 'Closed',
      createHost: (dedicated) => this.#createHost(dedicated),
      handOut: (host, request) => request.resolve(new Runspace(this.#owner, host)),
      ranDry: () => this.#checkDrained(),
      drained: () => this.#emit('drain'),
    });
    this.#supervisor = new Supervisor({
      options: options_,
      stats,
      emit,
      opened: () => this.#state === 'Opened',
      shutDown: () => this.#isShutDown(),
      destroying: () => this.#destroying,
      break: (reason) => this.#break(reason),
      ranDry: () => this.#checkDrained(),
    }, this.#scheduler);
  }

  get state(): RunspacePoolState {
    return this.#state;
  }

  open(): Promise<void> {
    if (this.#openPromise && (this.#state === 'Opening' || this.#state === 'Opened')) return this.#openPromise;
    if (this.#state !== 'BeforeOpen') {
      return Promise.reject(new InvalidPoolStateError(this.#state, 'BeforeOpen', 'open the pool'));
    }
    this.#setState('Opening');
    this.#openPromise = this.#openRunspaces();
    return this.#openPromise;
  }

  async #openRunspaces(): Promise<void> {
    const hosts: RunspaceHost[] = [];
    while (hosts.length < this.#options.minRunspaces) {
      for (let i = 0; i < SPAWNS_PER_TURN && hosts.length < this.#options.minRunspaces; i++) hosts.push(this.#scheduler.spawn(false));
      // Many runspaces open over several turns, so the event loop keeps running.
      if (hosts.length < this.#options.minRunspaces) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(hosts.map((host) => host.opened));
    if (this.#state !== 'Opening') {
      throw this.#brokenReason ?? new PoolClosedError('The pool was closed while it was opening.');
    }
    this.#setState('Opened');
    this.#scheduler.pump();
  }

  // ---- calls -----------------------------------------------------------------

  invoke(target: Function | ModuleFunction, options: InvokeOptions<readonly unknown[], unknown>): Promise<unknown> {
    let task: PoolTask;
    try {
      this.assertAccepting('invoke');
      const read = readInvokeOptions(options);
      this.#assertRoomInLine();
      task = this.#createTask(buildTaskSpec(target, read), read);
    } catch (error) {
      // Options were read and checked first: what is left untyped came from inspecting the function.
      return Promise.reject(asArgumentError(error, 'fn'));
    }
    if (!task.settled) this.#scheduler.schedule(task);
    return task.promise;
  }

  /** Calls waiting for a runspace (the pool's waiting line, acquire requests included). */
  get queueSize(): number {
    return this.#scheduler.line.size;
  }

  /**
   * Refuses a call that would wait when the line already holds `maxQueue`:
   * a call a free runspace takes at once never waits, so it is always taken.
   */
  #assertRoomInLine(): void {
    const { maxQueue } = this.#options;
    if (maxQueue === Infinity || this.#scheduler.line.size < maxQueue) return;
    if (this.#scheduler.line.size === 0 && this.#scheduler.idleCount > 0) return;
    throw new PoolQueueFullError(maxQueue);
  }

  acquire(options: AcquireOptions): Promise<Runspace> {
    let timeout: number | undefined;
    let signal: AbortSignal | undefined;
    try {
      this.assertAccepting('acquire a runspace');
      ({ timeout, signal } = cancelOptions(options));
    } catch (error) {
      return Promise.reject(error);
    }
    const request = new AcquireRequest(signal !== undefined || timeout !== undefined);
    if (request.cancellable) request.onSettle(onCancel(signal, timeout, (cause) => request.reject(cancellationOf(cause, false))));
    if (!request.settled) this.#scheduler.request(request);
    return request.promise;
  }

  /** The parallel layer's way in (see loop-pool.ts). */
  readonly loopPool: LoopPool = {
    submit: (spec, options) => {
      this.assertAccepting('run a parallel loop');
      const task = this.#createTask(spec, options);
      if (!task.settled) this.#scheduler.schedule(task);
      return task;
    },
    submitBehind: (previous, spec, options) => this.#submitBehind(previous, spec, options),
    submitFresh: (spec, options) => {
      this.assertAccepting('run a parallel loop');
      const task = this.#createTask(spec, options);
      if (!task.settled) this.#scheduler.runDedicated(task);
      return task;
    },
    forgetUsing: (usingId) => {
      for (const host of this.#scheduler.hosts) host.forgetUsing(usingId);
    },
    assertAccepting: (operation) => this.assertAccepting(operation),
  };

  #submitBehind(previous: TaskView, spec: TaskSpec, options: SubmitOptions): TaskView | undefined {
    const host = previous instanceof Task && previous.dispatched ? (previous as PoolTask).host : undefined;
    if (host === undefined || this.#state !== 'Opened' || !this.#scheduler.mayPipelineOn(host)) return undefined;
    const task = this.#createTask(spec, options);
    if (!task.settled) this.#scheduler.sendBehind(host, task);
    return task;
  }

  readonly #owner: RunspaceOwner = {
    invokePinned: (host, target, options) => {
      try {
        const read = readInvokeOptions(options);
        return this.#pinned(host, buildTaskSpec(target, read), read);
      } catch (error) {
        return Promise.reject(asArgumentError(error, 'fn'));
      }
    },
    getVariable: (host, name) => this.#pinned(host, variableSpec({ kind: 'getVariable', name: String(name) }), {}),
    setVariable: async (host, name, value) => {
      await this.#pinned(host, variableSpec({ kind: 'setVariable', name: String(name), value }), {});
    },
    release: (host) => this.#release(host),
  };

  #pinned(host: RunspaceHost, spec: TaskSpec, options: InvokeOptions<readonly unknown[], unknown>): Promise<unknown> {
    if (this.#state === 'Closing' || this.#state === 'Closed') return Promise.reject(new PoolClosedError());
    if (host.exited) return Promise.reject(host.exitError ?? new PoolClosedError());
    const task = this.#createTask(spec, options);
    if (!task.settled) host.dispatch([task]);
    return task.promise;
  }

  #release(host: RunspaceHost): void {
    if (host.phase !== 'acquired') return;
    if (host.inFlight.length > 0) host.moveTo('releasing');
    else this.#scheduler.becomeIdle(host);
  }

  #createTask(spec: TaskSpec, options: { readonly signal?: AbortSignal; readonly timeout?: number }): PoolTask {
    const timeout = timeoutMs('timeout', options.timeout);
    const { signal } = options;
    const task: PoolTask = new Task(spec, timeout, signal !== undefined || timeout !== undefined);
    if (task.cancellable) {
      task.onSettle(onCancel(signal, timeout, (cause) => {
        this.#cancel(task, cause.kind, cause.kind === 'abort' ? cause.reason : undefined);
      }));
    }
    return task;
  }

  /**
   * Cancellation: a queued task never starts; a running one is asked to stop
   * through `ctx.signal`, and costs its runspace only if it ignores that for
   * `cancelGracePeriod`.
   */
  #cancel(task: PoolTask, kind: CancelKind, reason: unknown): void {
    if (!task.markCancelled(kind, reason)) return;
    const host = task.host;
    if (!task.dispatched || host === undefined) {
      task.reject(task.cancellationError(false));
      return;
    }
    host.cancel(task, kind);
    const grace = startTimer(this.#options.cancelGracePeriod, () => {
      if (task.settled || host.exited) return;
      if (host.hasStarted(task)) {
        void host.terminate('recycled: a cancelled call ignored its signal');
      } else {
        // Still behind other work in that runspace, which will skip it.
        task.reject(task.cancellationError(false));
      }
    });
    task.onSettle(() => grace.cancel());
  }

  #createHost(dedicated: boolean): RunspaceHost {
    return new RunspaceHost(
      {
        variables: this.#options.variables,
        modules: this.#options.modules,
        startup: this.#startup,
        resourceLimits: this.#options.resourceLimits,
        env: this.#options.env,
        argv: this.#options.argv,
        execArgv: this.#options.execArgv,
        spinBeforeSleepUs: this.#options.spinBeforeSleep,
        concurrency: this.#options.concurrency,
        classInstances: this.#options.classInstances,
      },
      this.#supervisor.events,
      dedicated,
    );
  }

  // ---- size and load ---------------------------------------------------------

  setMaxRunspaces(n: number): boolean {
    if (!isValidCount(n, 1) || n < this.#options.minRunspaces || this.#isShutDown()) return false;
    assertRunspaceCount('maxRunspaces', n);
    this.#options.maxRunspaces = n;
    this.#scheduler.trimExcessIdle();
    this.#scheduler.pump();
    return true;
  }

  setMinRunspaces(n: number): boolean {
    if (!isValidCount(n, 0) || n > this.#options.maxRunspaces || this.#isShutDown()) return false;
    assertRunspaceCount('minRunspaces', n);
    this.#options.minRunspaces = n;
    if (this.#state === 'Opened') this.#scheduler.ensureMinimum();
    this.#scheduler.rearmIdleTimers();
    return true;
  }

  getMaxRunspaces(): number {
    return this.#options.maxRunspaces;
  }

  getMinRunspaces(): number {
    return this.#options.minRunspaces;
  }

  get jobThrottleLimit(): number {
    return this.#options.jobThrottleLimit;
  }

  getAvailableRunspaces(): number {
    let used = 0;
    for (const host of this.#scheduler.hosts) if (host.phase === 'acquired' || host.inFlight.length > 0) used++;
    return Math.max(0, this.#options.maxRunspaces - used);
  }

  stats(): PoolStats {
    let busy = 0;
    let acquired = 0;
    for (const host of this.#scheduler.hosts) {
      if (host.phase === 'acquired') acquired++;
      else if (host.inFlight.length > 0) busy++;
    }
    return {
      runspaces: this.#scheduler.live(),
      idle: this.#scheduler.idleCount,
      busy,
      acquired,
      queued: this.#scheduler.line.size,
      completed: this.#stats.completed,
      failed: this.#stats.failed,
      waitTime: this.#stats.waitTime,
      runTime: this.#stats.runTime,
    };
  }

  // ---- closing ---------------------------------------------------------------

  close(onClosing: () => void): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    this.#closePromise = this.#shutDown(false, onClosing);
    return this.#closePromise;
  }

  destroy(onClosing: () => void): Promise<void> {
    if (this.#closePromise && this.#destroying) return this.#closePromise;
    this.#destroying = true;
    this.#closePromise = this.#shutDown(true, onClosing);
    return this.#closePromise;
  }

  async #shutDown(immediately: boolean, onClosing: () => void): Promise<void> {
    if (this.#state === 'Closed') return;
    if (this.#state !== 'Broken') this.#setState('Closing');
    this.#scheduler.rejectWaiting(new PoolClosedError('The pool closed before this work started.'));
    onClosing();
    for (const host of this.#scheduler.hosts) host.armIdleTimer(undefined, () => {});
    if (!immediately) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        this.#checkDrained();
      });
    }
    await Promise.all([...this.#scheduler.hosts].map((host) => host.terminate(immediately ? 'pool destroyed' : 'pool closed')));
    if (this.#state !== 'Broken') this.#setState('Closed');
  }

  #checkDrained(): void {
    if (this.#drained === undefined) return;
    for (const host of this.#scheduler.hosts) if (host.inFlight.length > 0 && !this.#destroying) return;
    const drained = this.#drained;
    this.#drained = undefined;
    drained();
  }

  assertAccepting(operation: string): void {
    switch (this.#state) {
      case 'Opened':
      case 'Opening':
        return;
      case 'BeforeOpen':
      case 'Broken':
        throw new InvalidPoolStateError(this.#state, 'Opened', operation);
      default:
        throw new PoolClosedError();
    }
  }

  #isShutDown(): boolean {
    return this.#state === 'Closing' || this.#state === 'Closed' || this.#state === 'Broken';
  }

  #break(reason: Error): void {
    this.#brokenReason = reason;
    this.#setState('Broken', reason);
    this.#scheduler.rejectWaiting(reason);
    for (const host of this.#scheduler.hosts) void host.terminate('pool broken');
  }

  #setState(state: RunspacePoolState, reason?: Error): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.#emit('stateChanged', reason ? { previous, state, reason } : { previous, state });
  }
}

function cancellationOf(cause: { readonly kind: 'abort'; readonly reason: unknown } | { readonly kind: 'timeout'; readonly ms: number }, recycled: boolean): Error {
  return cause.kind === 'abort' ? new OperationCancelledError(cause.reason, recycled) : new TimeoutError(cause.ms, recycled);
}
