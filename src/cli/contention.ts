/**
 * The contention sweep of `runspaces bench contention`: for every critical
 * section length, lock and thread count, contenders hammer one lock for a
 * fixed time, several times; each point reports the medians of throughput,
 * fairness, acquire latency and handoff rate over its repeats.
 *
 * Every contender of a point starts at the same instant (they wait on a
 * shared flag) and stops at the same deadline, so counts compare.
 *
 * @module
 */

import { ReaderWriterLock } from '../sync/reader-writer-lock.js';
import { Mutex } from '../sync/mutex.js';
import { Semaphore } from '../sync/semaphore.js';
import { RunspacePool } from '../facade/runspace-pool.js';
import type { Runspace } from '../pool/runspace.js';
import { BUCKETS, jainsIndex, median, mergeInto, summarize } from './histogram.js';
import { CONTROL_HEADER, Control, type AsyncLockKind, type BlockingLockKind, type ContenderResult } from './contention-runners.js';

/** Contenders run as module functions: in the runspace, with this package's imports. */
const RUNNERS = new URL('./contention-runners.js', import.meta.url);

export type LockKind = BlockingLockKind | AsyncLockKind;
export const LOCK_KINDS: readonly LockKind[] = ['mutex', 'semaphore', 'rwlock', 'async-mutex', 'mutex-async'];

/** What each lock kind is, for tables and notes. */
export const LOCK_LABELS: Readonly<Record<LockKind, string>> = {
  mutex: 'Mutex (runspaces)',
  semaphore: 'Semaphore(1,1) (runspaces)',
  rwlock: 'ReaderWriterLock write (runspaces)',
  'async-mutex': 'async-mutex (async flows, 1 thread)',
  'mutex-async': 'Mutex.acquire (async flows, 1 thread)',
};

export interface ContentionOptions {
  readonly threads: readonly number[];
  readonly locks: readonly LockKind[];
  readonly criticalNs: readonly number[];
  readonly durationMs: number;
  readonly repeats: number;
  /** Called about ten times a second while a point runs. */
  readonly onProgress?: (progress: ContentionProgress) => void;
}

export interface ContentionProgress {
  readonly point: number;
  readonly points: number;
  readonly lock: LockKind;
  readonly threads: number;
  readonly criticalNs: number;
  readonly repeat: number;
  readonly repeats: number;
  readonly elapsedMs: number;
  readonly durationMs: number;
  readonly acquisitions: number;
}

/** One run of one point. */
export interface ContentionRun {
  readonly throughput: number;
  readonly fairness: number;
  readonly p50Ns: number;
  readonly p99Ns: number;
  readonly maxNs: number;
  /** Share of acquisitions that went to a different contender than the one before. */
  readonly handoffRate: number;
  readonly counts: readonly number[];
}

export interface ContentionPoint {
  readonly lock: LockKind;
  readonly threads: number;
  readonly criticalNs: number;
  readonly runs: readonly ContentionRun[];
  /** Medians over `runs`, metric by metric. */
  readonly median: Omit<ContentionRun, 'counts'>;
}

export interface ContentionReport {
  readonly kind: 'contention';
  readonly machine: MachineInfo;
  readonly options: Omit<ContentionOptions, 'onProgress'>;
  readonly points: readonly ContentionPoint[];
  /** Locks left out, and why (a peer that is not installed). */
  readonly skipped: readonly { readonly lock: LockKind; readonly reason: string }[];
}

export interface MachineInfo {
  readonly cores: number;
  readonly cpu: string;
  readonly node: string;
  readonly platform: string;
}

export async function machineInfo(): Promise<MachineInfo> {
  const os = await import('node:os');
  return { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU', node: process.version, platform: `${process.platform}/${process.arch}` };
}

/** Locks whose library is missing, with the reason; they are skipped, not fatal. */
async function unavailable(locks: readonly LockKind[]): Promise<{ lock: LockKind; reason: string }[]> {
  const skipped: { lock: LockKind; reason: string }[] = [];
  if (locks.includes('async-mutex')) {
    try {
      await import('async-mutex');
    } catch {
      skipped.push({ lock: 'async-mutex', reason: 'async-mutex is not installed (npm install async-mutex to compare against it)' });
    }
  }
  return skipped;
}

export async function runContention(options: ContentionOptions): Promise<ContentionReport> {
  const skipped = await unavailable(options.locks);
  const locks = options.locks.filter((lock) => !skipped.some((s) => s.lock === lock));
  const maxThreads = Math.max(...options.threads);
  const pool = await RunspacePool.open({ minRunspaces: maxThreads, maxRunspaces: maxThreads });
  const points: ContentionPoint[] = [];
  const total = options.criticalNs.length * locks.length * options.threads.length;
  try {
    for (const criticalNs of options.criticalNs) {
      for (const lock of locks) {
        for (const threads of options.threads) {
          const runs: ContentionRun[] = [];
          for (let repeat = 1; repeat <= options.repeats; repeat++) {
            const report = (elapsedMs: number, acquisitions: number): void =>
              options.onProgress?.({ point: points.length + 1, points: total, lock, threads, criticalNs, repeat, repeats: options.repeats, elapsedMs, durationMs: options.durationMs, acquisitions });
            runs.push(await measure(pool, lock, threads, criticalNs, options.durationMs, report));
          }
          points.push({ lock, threads, criticalNs, runs, median: medianRun(runs) });
        }
      }
    }
  } finally {
    await pool.close();
  }
  const { onProgress: _, ...settings } = options;
  return { kind: 'contention', machine: await machineInfo(), options: settings, points, skipped };
}

function newLock(kind: LockKind): unknown {
  switch (kind) {
    case 'mutex':
    case 'mutex-async':
      return new Mutex();
    case 'semaphore':
      return new Semaphore(1, 1);
    case 'rwlock':
      return new ReaderWriterLock();
    case 'async-mutex':
      return undefined;
  }
}

async function measure(
  pool: RunspacePool,
  kind: LockKind,
  threads: number,
  criticalNs: number,
  durationMs: number,
  progress: (elapsedMs: number, acquisitions: number) => void,
): Promise<ContentionRun> {
  const asyncFlows = kind === 'async-mutex' || kind === 'mutex-async';
  const contenders = asyncFlows ? 1 : threads;
  const control = new SharedArrayBuffer((CONTROL_HEADER + contenders) * Int32Array.BYTES_PER_ELEMENT);
  const cells = new Int32Array(control);
  const epoch = Date.now();
  const using = { lock: newLock(kind), kind, control, epoch, criticalNs };
  const runspaces: Runspace[] = [];
  for (let i = 0; i < contenders; i++) runspaces.push(await pool.acquire());
  try {
    const results: Promise<ContenderResult>[] = asyncFlows
      ? [runspaces[0]!.invoke<ContenderResult>({ module: RUNNERS, export: 'runAsyncFlows' }, { using, args: [threads] })]
      : runspaces.map((rs, slot) => rs.invoke<ContenderResult>({ module: RUNNERS, export: 'runBlockingContender' }, { using, args: [slot] }));
    try {
      await allReady(cells, contenders, results);
    } catch (error) {
      // Let the contenders that did start run out at once instead of waiting for a start that never comes.
      Atomics.store(cells, Control.Deadline, Date.now() - epoch);
      Atomics.store(cells, Control.Go, 1);
      Atomics.notify(cells, Control.Go);
      await Promise.allSettled(results);
      throw error;
    }
    const startedAt = Date.now();
    Atomics.store(cells, Control.Deadline, startedAt - epoch + durationMs);
    Atomics.store(cells, Control.Go, 1);
    Atomics.notify(cells, Control.Go);
    const timer = setInterval(() => {
      let acquisitions = 0;
      for (let i = 0; i < contenders; i++) acquisitions += Atomics.load(cells, CONTROL_HEADER + i);
      progress(Math.min(durationMs, Date.now() - startedAt), acquisitions);
    }, 100);
    let outcomes: ContenderResult[];
    try {
      outcomes = await Promise.all(results);
    } finally {
      clearInterval(timer);
    }
    const counts = outcomes.flatMap((o) => o.counts);
    const buckets = new Array<number>(BUCKETS).fill(0);
    let maxNs = 0;
    for (const outcome of outcomes) {
      mergeInto(buckets, outcome.buckets);
      maxNs = Math.max(maxNs, outcome.maxNs);
    }
    const acquisitions = counts.reduce((a, b) => a + b, 0);
    progress(durationMs, acquisitions);
    const latency = summarize(buckets, maxNs);
    return {
      throughput: acquisitions / (durationMs / 1000),
      fairness: jainsIndex(counts),
      p50Ns: latency.p50Ns,
      p99Ns: latency.p99Ns,
      maxNs,
      handoffRate: acquisitions === 0 ? Number.NaN : Atomics.load(cells, Control.Handoffs) / acquisitions,
      counts,
    };
  } finally {
    for (const rs of runspaces) rs.release();
  }
}

/** Resolves once every contender waits at the start; rejects if one failed first. */
async function allReady(cells: Int32Array, contenders: number, results: readonly Promise<unknown>[]): Promise<void> {
  let failed: unknown;
  Promise.all(results).catch((error: unknown) => {
    failed = error ?? new Error('a contender failed');
  });
  for (;;) {
    if (failed !== undefined) throw failed;
    const ready = Atomics.load(cells, Control.Ready);
    if (ready >= contenders) return;
    const wait = Atomics.waitAsync(cells, Control.Ready, ready, 50);
    if (wait.async) await wait.value;
    else await new Promise((resolve) => setImmediate(resolve));
  }
}

function medianRun(runs: readonly ContentionRun[]): Omit<ContentionRun, 'counts'> {
  const of = (pick: (run: ContentionRun) => number): number => median(runs.map(pick));
  return {
    throughput: of((r) => r.throughput),
    fairness: of((r) => r.fairness),
    p50Ns: of((r) => r.p50Ns),
    p99Ns: of((r) => r.p99Ns),
    maxNs: of((r) => r.maxNs),
    handoffRate: of((r) => r.handoffRate),
  };
}
