/**
 * A latency histogram that threads fill on their own and the main thread
 * merges by adding counts: buckets are eighths of a power of two of
 * nanoseconds, so any value is known within 9%, and the maximum is exact.
 *
 * @module
 */

/** Eight buckets per doubling, up to 2^40 ns (about 18 minutes). */
export const SUB_BUCKETS = 8;
export const BUCKETS = SUB_BUCKETS * 40;

export interface LatencySummary {
  readonly count: number;
  readonly p50Ns: number;
  readonly p99Ns: number;
  readonly maxNs: number;
}

export function bucketOf(ns: number): number {
  if (ns < 1) return 0;
  return Math.min(BUCKETS - 1, Math.floor(Math.log2(ns) * SUB_BUCKETS));
}

/** The middle (geometric) of a bucket's range, in ns. */
export function bucketValue(bucket: number): number {
  return 2 ** ((bucket + 0.5) / SUB_BUCKETS);
}

/** Adds `from` into `into`, bucket by bucket. */
export function mergeInto(into: number[], from: readonly number[]): void {
  for (let i = 0; i < BUCKETS; i++) into[i] = (into[i] ?? 0) + (from[i] ?? 0);
}

export function summarize(buckets: readonly number[], maxNs: number): LatencySummary {
  let count = 0;
  for (const n of buckets) count += n;
  const at = (fraction: number): number => {
    if (count === 0) return Number.NaN;
    const rank = Math.ceil(fraction * count);
    let seen = 0;
    for (let i = 0; i < buckets.length; i++) {
      seen += buckets[i] ?? 0;
      if (seen >= rank) return Math.min(bucketValue(i), maxNs);
    }
    return maxNs;
  };
  return { count, p50Ns: at(0.5), p99Ns: at(0.99), maxNs };
}

/**
 * Jain's fairness index over per-thread counts: 1 when every thread got the
 * same share, 1/n when one thread got everything.
 */
export function jainsIndex(counts: readonly number[]): number {
  let sum = 0;
  let squares = 0;
  for (const c of counts) {
    sum += c;
    squares += c * c;
  }
  return squares === 0 ? Number.NaN : (sum * sum) / (counts.length * squares);
}

export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
