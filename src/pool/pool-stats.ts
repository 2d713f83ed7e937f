/**
 * Counters and latency histograms of a pool. Node's own HDR histogram
 * (`perf_hooks.createHistogram`) records in nanoseconds at a fixed cost.
 *
 * @module
 */

import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** What `pool.stats()` reports: runspaces idle, busy and acquired; calls queued, completed and failed; how long calls waited and ran. */
export interface PoolStats {
  /** Runspaces alive (opening, idle, busy or acquired). */
  readonly runspaces: number;
  readonly idle: number;
  /** Runspaces running pool work. */
  readonly busy: number;
  /** Runspaces handed out by `acquire()`. */
  readonly acquired: number;
  /** Calls and acquire requests waiting for a runspace. */
  readonly queued: number;
  readonly completed: number;
  readonly failed: number;
  /** Time from `invoke()` to dispatch to a runspace. */
  readonly waitTime: LatencySummary;
  /** Time a call ran inside its runspace. */
  readonly runTime: LatencySummary;
}

export class StatsRecorder {
  completed = 0;
  failed = 0;
  readonly #wait: RecordableHistogram = createHistogram();
  readonly #run: RecordableHistogram = createHistogram();

  recordWait(ms: number): void {
    this.#wait.record(Math.max(1, Math.round(ms * 1e6)));
  }

  recordRun(ns: number): void {
    this.#run.record(Math.max(1, Math.round(ns)));
  }

  get waitTime(): LatencySummary {
    return summarize(this.#wait);
  }

  get runTime(): LatencySummary {
    return summarize(this.#run);
  }
}

function summarize(histogram: RecordableHistogram): LatencySummary {
  const count = histogram.count;
  if (count === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const ms = (ns: number): number => ns / 1e6;
  return {
    count,
    mean: ms(histogram.mean),
    p50: ms(histogram.percentile(50)),
    p90: ms(histogram.percentile(90)),
    p99: ms(histogram.percentile(99)),
    max: ms(histogram.max),
  };
}
