/**
 * Which runspace runs what, and when: the waiting line, the idle stack,
 * batches, pipelining, growth and trimming.
 *
 * Calls and acquire requests wait in one first-in first-out line. A free
 * runspace is taken from the idle stack (most recently used first); when none
 * is free and the pool is below its maximum, a new runspace is opened (growth
 * is lazy). Quick calls go several per message, and a runspace busy with
 * quick work may be handed the next batch before it finishes (see
 * `batching.ts`). In a pool with `concurrency` above 1, a busy runspace with
 * a free slot takes calls before the pool grows. A runspace idle past `idleTimeout` is closed while the pool
 * is above its minimum. Acquired, releasing, dedicated and retiring runspaces
 * are outside all of this: {@link isSchedulable} is the one test.
 *
 * @module
 */

import { fairShare, PIPELINE_LIMIT_NS, STALLED_AFTER_MS, TARGET_BATCH_NS } from './batching.js';
import { AcquireRequest } from './acquire-request.js';
import { IdleStack } from './idle-stack.js';
import type { NormalizedPoolOptions } from './options.js';
import type { StatsRecorder } from './pool-stats.js';
import type { RunspaceHost } from './runspace-host.js';
import { isCounted, isSchedulable } from './runspace-phase.js';
import { Task } from './task.js';
import { WaitingLine } from './waiting-line.js';

export type PoolTask = Task<RunspaceHost>;

/**
 * Runspaces opened in one turn of the event loop at most. Opening one costs
 * this thread about a millisecond; a pool asked for hundreds at once opens
 * them over several turns, so timers, I/O and signals keep running.
 */
export const SPAWNS_PER_TURN = 16;
type Waiting = PoolTask | AcquireRequest;

/** What the scheduler needs from the pool it works for. */
export interface SchedulerContext {
  readonly options: NormalizedPoolOptions;
  readonly stats: StatsRecorder;
  /** True while the pool hands out work (opening or opened). */
  serving(): boolean;
  /** True once the pool is closing: runspaces that run dry are not reused. */
  closing(): boolean;
  /** Opens a runspace wired to the pool's supervisor. */
  createHost(dedicated: boolean): RunspaceHost;
  /** Gives an idle runspace to an acquire request. */
  handOut(host: RunspaceHost, request: AcquireRequest): void;
  /** A runspace ran out of work while the pool is closing. */
  ranDry(): void;
  /** The waiting line emptied after holding work (the pool's `drain` event). */
  drained(): void;
}

export class Scheduler {
  readonly hosts = new Set<RunspaceHost>();
  readonly line = new WaitingLine<Waiting>();
  readonly #idle = new IdleStack<RunspaceHost>();
  /** Runspaces holding calls behind the one they run, watched for being stuck on it. */
  readonly #stallWatches = new Map<RunspaceHost, NodeJS.Timeout>();
  readonly #context: SchedulerContext;
  /** Runspaces opening that will count against the maximum. */
  #opening = 0;
  #pumping = false;
  /** Calls waited in line since it was last empty: its emptying is worth a `drain` event. */
  #lineHeldWork = false;
  #spawnedThisTurn = 0;
  #resumeScheduled = false;

  constructor(context: SchedulerContext) {
    this.#context = context;
  }

  get idleCount(): number {
    return this.#idle.length;
  }

  /** Runspaces not on their way out: what counts against min and max. */
  live(): number {
    let live = 0;
    for (const host of this.hosts) if (isCounted(host.phase)) live++;
    return live;
  }

  /** Runs `task` now on a free runspace when nobody waits ahead of it; otherwise queues it. */
  schedule(task: PoolTask): void {
    const host = this.line.size === 0 ? this.#idle.pop() : undefined;
    if (host !== undefined) {
      // The common quiet case: a free runspace and nobody ahead in line.
      this.#context.stats.recordWait(0);
      this.#runOn(host, [task]);
    } else {
      this.line.push(task);
      this.#lineHeldWork = true;
      this.pump();
    }
  }

  /** Queues an acquire request. */
  request(request: AcquireRequest): void {
    this.line.push(request);
    this.pump();
  }

  /**
   * Pipelining: may a task go straight to `host`, still busy with the same
   * caller's earlier task, so that runspace goes straight on to it? Not when
   * anyone waits in line (it would jump ahead of other callers), nor when the
   * runspace is no longer the pool's to schedule on.
   */
  mayPipelineOn(host: RunspaceHost): boolean {
    return this.line.size === 0 && this.#context.serving() && host.phase === 'busy' && host.inFlight.length > 0;
  }

  /** Sends `task` behind the work `host` is running; see {@link mayPipelineOn}. */
  sendBehind(host: RunspaceHost, task: PoolTask): void {
    this.#context.stats.recordWait(0);
    host.dispatch([task]);
  }

  /** Opens a runspace for one call alone (`useNewRunspace`); it closes once the call settles. */
  runDedicated(task: PoolTask): void {
    const host = this.spawn(true);
    // A worker keeps messages sent before it listens, so this runs once it is ready.
    host.dispatch([task]);
    if (host.inFlight.length === 0) void host.terminate('fresh runspace not needed');
  }

  /** Work that a dead runspace never started goes back to the head of the line. */
  requeue(tasks: readonly PoolTask[]): void {
    for (const task of tasks) task.requeue();
    this.line.unshiftAll(tasks);
  }

  /** Rejects everything waiting in line. */
  rejectWaiting(error: Error): void {
    for (const entry of this.line.drain()) entry.reject(error);
  }

  pump(): void {
    // While opening, runspaces that are ready already take work.
    if (this.#pumping || !this.#context.serving()) return;
    this.#pumping = true;
    try {
      for (let head = this.line.peek(); head !== undefined; head = this.line.peek()) {
        if (head instanceof AcquireRequest) {
          const host = this.#idle.pop();
          if (host === undefined) break;
          this.line.shift();
          host.moveTo('acquired');
          this.#context.handOut(host, head);
          continue;
        }
        const host = this.#idle.pop() ?? this.#pipelineCandidate(head) ?? this.#freeSlotCandidate(head);
        if (host === undefined) break;
        this.#dispatchBatch(host);
      }
      this.#grow();
    } finally {
      this.#pumping = false;
    }
    if (this.#lineHeldWork && this.line.size === 0) {
      this.#lineHeldWork = false;
      this.#context.drained();
    }
  }

  /** A busy runspace running quick work that can take the next batch before it finishes. */
  #pipelineCandidate(head: PoolTask): RunspaceHost | undefined {
    if (head.spec.cost.ns >= PIPELINE_LIMIT_NS) return undefined;
    let best: RunspaceHost | undefined;
    const stalledBefore = performance.now() - STALLED_AFTER_MS;
    for (const host of this.hosts) {
      if (!isSchedulable(host.phase) || host.pendingNs >= PIPELINE_LIMIT_NS) continue;
      // Its estimate says quick, but it has been on its current call too long: not behind that.
      if (host.inFlight.length > 0 && host.lastProgressAt < stalledBefore) continue;
      // Calls that turn out to await would wait behind the full slots instead of starting elsewhere.
      if (host.concurrency > 1 && !host.hasFreeSlot()) continue;
      if (best === undefined || host.pendingNs < best.pendingNs) best = host;
    }
    return best;
  }

  /** The least loaded busy runspace that can start a call beside those it runs (pools with `concurrency` above 1). */
  #freeSlotCandidate(head: PoolTask): RunspaceHost | undefined {
    if (this.#context.options.concurrency === 1 || head.spec.chunk !== undefined) return undefined;
    let best: RunspaceHost | undefined;
    for (const host of this.hosts) {
      if (!isSchedulable(host.phase) || !host.hasFreeSlot()) continue;
      if (best === undefined || host.inFlight.length < best.inFlight.length) best = host;
    }
    return best;
  }

  #dispatchBatch(host: RunspaceHost): void {
    // Beyond its free slots, calls would wait inside the runspace while another could start them.
    const slots = host.concurrency === 1 ? Infinity : Math.max(1, host.concurrency - host.inFlight.length);
    const limit = Math.min(slots, fairShare(this.line.size, this.hosts.size));
    const batch: PoolTask[] = [];
    let budgetNs = 0;
    const now = performance.now();
    for (let head = this.line.peek(); head instanceof Task && batch.length < limit; head = this.line.peek()) {
      if (batch.length > 0 && budgetNs + head.spec.cost.ns > TARGET_BATCH_NS) break;
      this.line.shift();
      batch.push(head);
      budgetNs += head.spec.cost.ns;
      this.#context.stats.recordWait(now - head.enqueuedAt);
    }
    this.#runOn(host, batch);
  }

  /** Sends work to an idle or busy runspace; one whose every task failed to send is free again at once. */
  #runOn(host: RunspaceHost, tasks: PoolTask[]): void {
    host.dispatch(tasks);
    if (host.inFlight.length > 0) {
      if (host.phase === 'idle') host.moveTo('busy');
      this.#watchForStall(host);
    } else if (host.phase === 'idle') {
      this.#stackIdle(host);
    }
  }

  /**
   * While calls wait behind the one a runspace runs, looks every
   * `STALLED_AFTER_MS` whether it is stuck (no answer, nothing started since
   * the last look); then the calls it has not begun go back to the head of
   * the line, for idle runspaces or new ones. Quick calls travel several at
   * a time for speed, and one of them blocking (a barrier all of them must
   * reach, a lock a later one releases) would otherwise hold the others,
   * and itself, forever.
   */
  #watchForStall(host: RunspaceHost): void {
    if (host.concurrency !== 1 || host.inFlight.length < 2 || this.#stallWatches.has(host)) return;
    const watch = setTimeout(() => {
      this.#stallWatches.delete(host);
      if (host.exited || host.phase !== 'busy' || host.inFlight.length < 2) return;
      if (performance.now() - host.lastProgressAt >= STALLED_AFTER_MS) {
        const taken = host.reclaimUnstarted();
        if (taken.length > 0) {
          this.requeue(taken);
          this.pump();
        }
      }
      this.#watchForStall(host);
    }, STALLED_AFTER_MS);
    watch.unref();
    this.#stallWatches.set(host, watch);
  }

  /** A runspace finished its work (or was released, or opened): reuse it, or close it if the pool is too big. */
  becomeIdle(host: RunspaceHost): void {
    if (host.phase !== 'idle') host.moveTo('idle');
    if (this.#context.closing()) {
      this.#context.ranDry();
      return;
    }
    if (this.live() > this.#context.options.maxRunspaces) {
      void host.terminate('trimmed: above maxRunspaces');
      return;
    }
    this.#stackIdle(host);
    this.pump();
  }

  #stackIdle(host: RunspaceHost): void {
    this.#idle.push(host);
    this.#armIdleTimer(host);
  }

  #armIdleTimer(host: RunspaceHost): void {
    const { minRunspaces, idleTimeout } = this.#context.options;
    if (this.live() <= minRunspaces || idleTimeout === undefined) {
      host.armIdleTimer(undefined, () => {});
      return;
    }
    host.armIdleTimer(idleTimeout, () => {
      // Objects living in the runspace would die with it: it stays while proxies of them are held.
      // (Every proxy of them, in any runspace, relays through one the main thread holds.)
      if (host.link.remoteCount > 0) {
        this.#armIdleTimer(host);
        return;
      }
      if (this.live() > this.#context.options.minRunspaces && this.#idle.remove(host)) {
        void host.terminate('trimmed: idle past idleTimeout');
      }
    });
  }

  /** The minimum changed: idle runspaces get (or lose) their idle timers. */
  rearmIdleTimers(): void {
    for (const host of this.#idle) this.#armIdleTimer(host);
  }

  /** Opens runspaces for work waiting in line, up to the maximum. */
  #grow(): void {
    let wanted = this.line.size - this.#opening;
    while (wanted > 0 && this.live() < this.#context.options.maxRunspaces && this.#maySpawn()) {
      this.spawn(false);
      wanted--;
    }
  }

  ensureMinimum(): void {
    while (this.live() < this.#context.options.minRunspaces && this.#maySpawn()) this.spawn(false);
  }

  /** True while this turn may open another runspace; otherwise growth resumes on the next turn. */
  #maySpawn(): boolean {
    if (this.#spawnedThisTurn < SPAWNS_PER_TURN) return true;
    if (!this.#resumeScheduled) {
      this.#resumeScheduled = true;
      setImmediate(() => {
        this.#resumeScheduled = false;
        if (!this.#context.serving()) return;
        this.ensureMinimum();
        this.pump();
      });
    }
    return false;
  }

  trimExcessIdle(): void {
    while (this.live() > this.#context.options.maxRunspaces && this.#idle.length > 0) {
      void this.#idle.pop()!.terminate('trimmed: above maxRunspaces');
    }
  }

  spawn(dedicated: boolean): RunspaceHost {
    if (this.#spawnedThisTurn++ === 0) setImmediate(() => (this.#spawnedThisTurn = 0));
    const host = this.#context.createHost(dedicated);
    this.hosts.add(host);
    if (!dedicated) this.#opening++;
    return host;
  }

  /** A runspace that counted as opening is ready, or died trying. */
  openFinished(): void {
    this.#opening--;
  }

  /** A runspace exited: it is no longer the scheduler's. */
  forget(host: RunspaceHost): void {
    this.hosts.delete(host);
    this.#idle.remove(host);
    clearTimeout(this.#stallWatches.get(host));
    this.#stallWatches.delete(host);
  }
}
