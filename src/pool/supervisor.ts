/**
 * What the pool does when a runspace reports: it opened, results came back,
 * it wrote a stream record, it exited. This is where the settle rule of
 * `task.ts` is kept for work that reached a runspace:
 *
 * - a result settles its task (a cancelled task settles as cancelled, unless
 *   it is a chunk whose partial outcome the loop wants);
 * - a runspace that exits hands back every task it held: those it had
 *   started are rejected (`RunspaceBrokenError`, or the cancellation they
 *   were already under); those it had not started go back to the head of
 *   the line, unless they were addressed to that runspace (a `Runspace`
 *   handle, `useNewRunspace`) or the pool is shutting down, when they are
 *   rejected too;
 * - a runspace that cannot open breaks the pool (`throwOnOpenError`) or
 *   fails the waiting work once no runspace is left to serve it.
 *
 * @module
 */

import { PoolClosedError, RunspaceOpenError } from '../errors.js';
import type { AffinityLink } from '../affinity/link.js';
import { deserializeError } from '../protocol/error-codec.js';
import type { ChunkOutcome, WireResult } from '../protocol/messages.js';
import { recoverAbandoned } from '../sync/shared-cells.js';
import type { EmitPoolEvent } from './pool-events.js';
import type { NormalizedPoolOptions } from './options.js';
import type { StatsRecorder } from './pool-stats.js';
import type { ExitInfo, HostEvents, RunspaceHost } from './runspace-host.js';
import type { PoolTask, Scheduler } from './scheduler.js';
import { mapScriptStacks } from './script-registry.js';

/** What the supervisor needs from the pool it works for. */
export interface SupervisorContext {
  readonly options: NormalizedPoolOptions;
  readonly stats: StatsRecorder;
  readonly emit: EmitPoolEvent;
  /** The pool is opened: a lost runspace is replaced. */
  opened(): boolean;
  /** The pool is closing, closed or broken: nothing is requeued. */
  shutDown(): boolean;
  /** The pool is being destroyed: running work fails with `PoolClosedError`. */
  destroying(): boolean;
  /** Breaks the pool with `reason`. */
  break(reason: Error): void;
  /** A runspace's work ran out or it exited: the pool may have drained. */
  ranDry(): void;
}

export class Supervisor {
  readonly #context: SupervisorContext;
  readonly #scheduler: Scheduler;

  constructor(context: SupervisorContext, scheduler: Scheduler) {
    this.#context = context;
    this.#scheduler = scheduler;
  }

  readonly events: HostEvents = {
    ready: (host, openErrors) => {
      if (host.phase !== 'dedicated') this.#scheduler.openFinished();
      if (openErrors.length > 0) {
        const first = openErrors[0];
        const error = new RunspaceOpenError(
          host.id,
          first instanceof Error ? first.message : String(first),
          { cause: openErrors.length === 1 ? first : new AggregateError(openErrors, 'several open errors') },
        );
        if (this.#context.options.throwOnOpenError) {
          this.#context.break(error);
          return;
        }
        this.#context.emit('runspaceOpenError', error);
      }
      this.#context.emit('runspaceOpened', host.id);
      if (host.phase === 'opening') this.#scheduler.becomeIdle(host);
    },

    taskDone: (host, task, result) => this.#settle(host, task, result),

    progressed: (host) => {
      if (host.inFlight.length === 0) {
        switch (host.phase) {
          case 'dedicated':
            void host.terminate('fresh runspace done');
            return;
          case 'busy':
          case 'releasing':
            this.#scheduler.becomeIdle(host);
            break;
          case 'acquired':
            this.#context.ranDry();
            break;
          default:
            break;
        }
      }
      this.#scheduler.pump();
    },

    record: (_host, task, record) => {
      const handler = task?.spec.onRecord;
      if (handler) {
        try {
          handler(record);
        } catch (error) {
          queueMicrotask(() => {
            throw error;
          });
        }
      } else {
        this.#context.emit('record', record);
      }
    },

    itemStarted: (_host, task, index) => task.spec.onItemStarted?.(index),

    partial: (host, task, outcome) => {
      // A part never copies classes (the runspace keeps those for the result), so it decodes at once.
      task.spec.onPartial?.(decodeOutcome(host.link, outcome));
    },

    exited: (host, info, lost, unstarted) => this.#onExit(host, info, lost, unstarted),
  };

  #settle(host: RunspaceHost, task: PoolTask, result: WireResult): void {
    const stats = this.#context.stats;
    task.spec.cost.record(result.runNs);
    stats.recordRun(result.runNs);
    if (task.cancelKind !== undefined && !(result.ok && task.spec.keepResultWhenCancelled)) {
      stats.failed++;
      task.reject(task.cancellationError(false));
    } else if (result.ok) {
      stats.completed++;
      resolveWith(host.link, task, result.value, result.loadsClasses === true);
    } else {
      stats.failed++;
      const error = deserializeError(result.error);
      mapScriptStacks(error);
      task.reject(error);
    }
  }

  #onExit(host: RunspaceHost, info: ExitInfo, lost: PoolTask[], unstarted: PoolTask[]): void {
    // First of all: locks the dead runspace held pass to their waiters, flagged abandoned.
    recoverAbandoned(host.id);
    // The phase it was in before it exited tells who its unstarted work was for.
    const addressed = info.phaseBefore === 'acquired' || info.phaseBefore === 'releasing' || info.phaseBefore === 'dedicated';
    this.#scheduler.forget(host);
    const context = this.#context;
    const broken = host.exitError!;
    const destroying = context.destroying();
    const stopped = destroying ? new PoolClosedError('The pool was destroyed while this work ran.') : broken;
    for (const task of lost) {
      context.stats.failed++;
      task.reject(task.cancelKind !== undefined && !destroying ? task.cancellationError(true) : stopped);
    }
    if (addressed || context.shutDown()) {
      // Calls addressed to this runspace had nowhere else to go.
      for (const task of unstarted) task.reject(task.cancelKind !== undefined ? task.cancellationError(false) : stopped);
    } else {
      // A task cancelled while it waited behind the dead one is done: it must not run elsewhere.
      const again = unstarted.filter((task) => {
        if (task.cancelKind === undefined) return true;
        task.reject(task.cancellationError(false));
        return false;
      });
      this.#scheduler.requeue(again);
    }
    context.emit('runspaceClosed', { runspaceId: host.id, exitCode: info.exitCode, reason: info.reason, intended: info.intended });
    if (info.duringOpen && !info.intended && info.phaseBefore === 'dedicated') {
      context.emit('runspaceOpenError', new RunspaceOpenError(host.id, `it stopped before it was ready (${info.reason})`, { cause: info.error }));
    } else if (info.duringOpen && !info.intended) {
      this.#scheduler.openFinished();
      this.#onOpenFailure(new RunspaceOpenError(host.id, `it stopped before it was ready (${info.reason})`, { cause: info.error }));
    } else if (context.opened()) {
      this.#scheduler.ensureMinimum();
      this.#scheduler.pump();
    }
    context.ranDry();
  }

  /**
   * A runspace could not open. Opening is deterministic (same modules, same
   * scripts), so retrying would likely loop: with `throwOnOpenError`, the pool
   * breaks; without, work waits only while some other runspace can serve it.
   */
  #onOpenFailure(error: RunspaceOpenError): void {
    if (this.#context.options.throwOnOpenError) {
      this.#context.break(error);
      return;
    }
    this.#context.emit('runspaceOpenError', error);
    let serving = false;
    for (const host of this.#scheduler.hosts) if (!host.exited) serving = true;
    if (!serving) this.#scheduler.rejectWaiting(error);
  }
}

/**
 * Decodes a result through its runspace's link, first importing the classes
 * it copies when needed. A chunk's outputs are decoded each on its own, as
 * each item's result was encoded.
 */
function resolveWith(link: AffinityLink, task: PoolTask, value: unknown, loadsClasses: boolean): void {
  const outcome = task.spec.chunk === undefined ? undefined : (value as ChunkOutcome);
  const decode = (): void => {
    try {
      task.resolve(outcome === undefined ? link.decode(value) : decodeOutcome(link, outcome));
    } catch (error) {
      task.reject(error);
    }
  };
  const loading = loadsClasses ? link.prepare(outcome === undefined ? [value] : outcome.values) : undefined;
  if (loading === undefined) decode();
  else loading.then(decode, (error: unknown) => task.reject(error));
}

function decodeOutcome(link: AffinityLink, outcome: ChunkOutcome): ChunkOutcome {
  const values = link.decodeArgs(outcome.values);
  return values === outcome.values ? outcome : { ...outcome, values };
}
