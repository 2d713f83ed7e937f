/**
 * What each contending runspace runs. The pool invokes these as module
 * functions (`invoke({ module, export })`), so they run with this module's
 * imports in the runspace.
 *
 * The control block (an `Int32Array` over a `SharedArrayBuffer`) is shared by
 * every contender of a point and the main thread:
 *
 *   [0] READY     contenders that are waiting for the start
 *   [1] GO        set to 1 by the main thread to start them all at once
 *   [2] DEADLINE  end of the run, in ms after `using.epoch`
 *   [3] OWNER     the last contender to take the lock (written inside the lock)
 *   [4] HANDOFFS  how often the lock went to a different contender than the last
 *                 (the first acquisition of a run is no handoff)
 *   [5 + i]       acquisitions by contender i so far, for the progress display
 *
 * Latencies are acquire waits, timed with `performance.now()` around the
 * acquire call, into the buckets of histogram.ts.
 *
 * @module
 */

import type { RunspaceContext } from '../runspace/context.js';
import { BUCKETS, bucketOf } from './histogram.js';

export const enum Control {
  Ready = 0,
  Go = 1,
  Deadline = 2,
  Owner = 3,
  Handoffs = 4,
  /** First per-contender progress count. */
  Progress = 5,
}
export const CONTROL_HEADER = Control.Progress;

export type BlockingLockKind = 'mutex' | 'semaphore' | 'rwlock';
export type AsyncLockKind = 'async-mutex' | 'mutex-async';

export interface ContenderUsing {
  readonly lock: unknown;
  readonly kind: BlockingLockKind | AsyncLockKind;
  readonly control: SharedArrayBuffer;
  readonly epoch: number;
  readonly criticalNs: number;
}

export interface ContenderResult {
  readonly counts: readonly number[];
  readonly buckets: readonly number[];
  readonly maxNs: number;
}

/** What a contender (or every flow of one) notes for each acquisition. */
class Acquisitions {
  readonly buckets = new Array<number>(BUCKETS).fill(0);
  maxNs = 0;
  readonly criticalMs: number;

  constructor(readonly cells: Int32Array, criticalNs: number) {
    this.criticalMs = criticalNs / 1e6;
  }

  /** Inside the lock, just acquired at `at`: counts a handoff, then runs the critical section. */
  holding(me: number, at: number): void {
    const cells = this.cells;
    if (cells[Control.Owner] !== me) {
      if (cells[Control.Owner] !== 0) cells[Control.Handoffs]!++;
      cells[Control.Owner] = me;
    }
    if (this.criticalMs > 0) {
      const end = at + this.criticalMs;
      while (performance.now() < end);
    }
  }

  /** After the release, outside the lock: records the wait. */
  waited(ms: number): void {
    const ns = ms * 1e6;
    if (ns > this.maxNs) this.maxNs = ns;
    this.buckets[bucketOf(ns)]!++;
  }
}

/** Reports ready, blocks until every contender is and the main thread says go; returns the deadline. */
function awaitStart(cells: Int32Array, epoch: number): number {
  Atomics.add(cells, Control.Ready, 1);
  Atomics.notify(cells, Control.Ready);
  Atomics.wait(cells, Control.Go, 0);
  return epoch + Atomics.load(cells, Control.Deadline);
}

/** One thread contending for a shared lock, blocking, until the deadline. */
export function runBlockingContender(ctx: RunspaceContext<ContenderUsing>, slot: number): ContenderResult {
  const { lock, kind, control, epoch, criticalNs } = ctx.using;
  const cells = new Int32Array(control);
  const target = lock as { waitOne(): boolean; releaseMutex(): void; release(): number; enterWriteLock(): void; exitWriteLock(): void };
  const acquire = kind === 'rwlock' ? () => target.enterWriteLock() : () => target.waitOne();
  const release = kind === 'mutex' ? () => target.releaseMutex() : kind === 'semaphore' ? () => void target.release() : () => target.exitWriteLock();
  const log = new Acquisitions(cells, criticalNs);
  const me = slot + 1;
  let count = 0;
  const deadline = awaitStart(cells, epoch);
  for (;;) {
    if ((count & 15) === 0 && Date.now() >= deadline) break;
    const t0 = performance.now();
    acquire();
    const t1 = performance.now();
    log.holding(me, t1);
    release();
    count++;
    log.waited(t1 - t0);
    if ((count & 255) === 0) Atomics.store(cells, Control.Progress + slot, count);
  }
  Atomics.store(cells, Control.Progress + slot, count);
  return { counts: [count], buckets: log.buckets, maxNs: log.maxNs };
}

/**
 * `flows` async flows in one runspace, contending for one lock with
 * `await acquire()`: the only way an in-thread lock such as async-mutex can be
 * contended, and the same shape for this library's `Mutex.acquire()`.
 */
export async function runAsyncFlows(ctx: RunspaceContext<ContenderUsing>, flows: number): Promise<ContenderResult> {
  const { kind, control, epoch, criticalNs } = ctx.using;
  const cells = new Int32Array(control);
  let acquire: () => Promise<() => void>;
  if (kind === 'async-mutex') {
    const { Mutex } = (await import('async-mutex')) as { Mutex: new () => { acquire(): Promise<() => void> } };
    const mutex = new Mutex();
    acquire = () => mutex.acquire();
  } else {
    const mutex = ctx.using.lock as { acquire(): Promise<boolean>; releaseMutex(): void };
    acquire = async () => {
      await mutex.acquire();
      return () => mutex.releaseMutex();
    };
  }
  const log = new Acquisitions(cells, criticalNs);
  const counts: number[] = new Array<number>(flows).fill(0);
  let total = 0;
  const deadline = awaitStart(cells, epoch);
  const flow = async (me: number): Promise<void> => {
    while (Date.now() < deadline) {
      const t0 = performance.now();
      const release = await acquire();
      const t1 = performance.now();
      log.holding(me, t1);
      release();
      counts[me - 1]!++;
      total++;
      log.waited(t1 - t0);
      if ((total & 255) === 0) Atomics.store(cells, Control.Progress, total);
    }
  };
  await Promise.all(Array.from({ length: flows }, (_, i) => flow(i + 1)));
  Atomics.store(cells, Control.Progress, total);
  return { counts, buckets: log.buckets, maxNs: log.maxNs };
}
