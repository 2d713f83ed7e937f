/**
 * What each contending runspace runs. These are script blocks: they cross to
 * runspaces by their source, so they use nothing but their arguments, `ctx`
 * and `import()`.
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
 * acquire call, into the buckets of histogram.ts (eighths of a power of two
 * of nanoseconds; the bucket formula is repeated here because a script block
 * cannot import our modules by relative path).
 *
 * @module
 */

import type { RunspaceContext } from '../runspace/context.js';

export const CONTROL_HEADER = 5;

export type BlockingLockKind = 'mutex' | 'semaphore' | 'rwlock';
export type AsyncLockKind = 'async-mutex' | 'mutex-async';

export interface ContenderUsing {
  readonly lock: unknown;
  readonly kind: BlockingLockKind;
  readonly control: SharedArrayBuffer;
  readonly epoch: number;
  readonly criticalNs: number;
}

export interface ContenderResult {
  readonly counts: readonly number[];
  readonly buckets: readonly number[];
  readonly maxNs: number;
}

/** One thread contending for a shared lock, blocking, until the deadline. */
export function runBlockingContender(ctx: RunspaceContext<ContenderUsing>, slot: number): ContenderResult {
  const { lock, kind, control, epoch, criticalNs } = ctx.using;
  const cells = new Int32Array(control);
  const target = lock as { waitOne(): boolean; releaseMutex(): void; release(): number; enterWriteLock(): void; exitWriteLock(): void };
  const acquire = kind === 'rwlock' ? () => target.enterWriteLock() : () => target.waitOne();
  const release = kind === 'mutex' ? () => target.releaseMutex() : kind === 'semaphore' ? () => void target.release() : () => target.exitWriteLock();
  const buckets: number[] = new Array<number>(320).fill(0);
  const me = slot + 1;
  const criticalMs = criticalNs / 1e6;
  let maxNs = 0;
  let count = 0;
  Atomics.add(cells, 0, 1);
  Atomics.notify(cells, 0);
  Atomics.wait(cells, 1, 0);
  const deadline = epoch + Atomics.load(cells, 2);
  for (;;) {
    if ((count & 15) === 0 && Date.now() >= deadline) break;
    const t0 = performance.now();
    acquire();
    const t1 = performance.now();
    if (cells[3] !== me) {
      if (cells[3] !== 0) cells[4]!++;
      cells[3] = me;
    }
    if (criticalMs > 0) {
      const end = t1 + criticalMs;
      while (performance.now() < end);
    }
    release();
    count++;
    const ns = (t1 - t0) * 1e6;
    if (ns > maxNs) maxNs = ns;
    buckets[ns < 1 ? 0 : Math.min(319, Math.floor(Math.log2(ns) * 8))]!++;
    if ((count & 255) === 0) Atomics.store(cells, 5 + slot, count);
  }
  Atomics.store(cells, 5 + slot, count);
  return { counts: [count], buckets, maxNs };
}

export interface FlowsUsing {
  readonly lock: unknown;
  readonly kind: AsyncLockKind;
  readonly control: SharedArrayBuffer;
  readonly epoch: number;
  readonly criticalNs: number;
}

/**
 * `flows` async flows in one runspace, contending for one lock with
 * `await acquire()`: the only way an in-thread lock such as async-mutex can be
 * contended, and the same shape for this library's `Mutex.acquire()`.
 */
export async function runAsyncFlows(ctx: RunspaceContext<FlowsUsing>, flows: number): Promise<ContenderResult> {
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
  const buckets: number[] = new Array<number>(320).fill(0);
  const counts: number[] = new Array<number>(flows).fill(0);
  const criticalMs = criticalNs / 1e6;
  let maxNs = 0;
  let total = 0;
  Atomics.add(cells, 0, 1);
  Atomics.notify(cells, 0);
  Atomics.wait(cells, 1, 0);
  const deadline = epoch + Atomics.load(cells, 2);
  const flow = async (me: number): Promise<void> => {
    while (Date.now() < deadline) {
      const t0 = performance.now();
      const release = await acquire();
      const t1 = performance.now();
      if (cells[3] !== me) {
        if (cells[3] !== 0) cells[4]!++;
        cells[3] = me;
      }
      if (criticalMs > 0) {
        const end = t1 + criticalMs;
        while (performance.now() < end);
      }
      release();
      counts[me - 1]!++;
      total++;
      const ns = (t1 - t0) * 1e6;
      if (ns > maxNs) maxNs = ns;
      buckets[ns < 1 ? 0 : Math.min(319, Math.floor(Math.log2(ns) * 8))]!++;
      if ((total & 255) === 0) Atomics.store(cells, 5, total);
    }
  };
  await Promise.all(Array.from({ length: flows }, (_, i) => flow(i + 1)));
  Atomics.store(cells, 5, total);
  return { counts, buckets, maxNs };
}
