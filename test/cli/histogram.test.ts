import { describe, expect, test } from 'vitest';
// Internal to the command, tested through its built file as the command loads it.
import { BUCKETS, bucketOf, jainsIndex, mergeInto, summarize } from '../../dist/cli/histogram.js';

describe('latency histogram', () => {
  test('a value lands in a bucket whose middle is within 9% of it', () => {
    for (const ns of [1, 7, 50, 333, 1_000, 12_345, 987_654, 5e9]) {
      const middle = 2 ** ((bucketOf(ns) + 0.5) / 8);
      expect(Math.abs(middle - ns) / ns).toBeLessThan(0.09);
    }
  });

  test('merged histograms give the percentiles of all values together; the maximum is exact', () => {
    const a = new Array<number>(BUCKETS).fill(0);
    const b = new Array<number>(BUCKETS).fill(0);
    for (let i = 0; i < 99; i++) a[bucketOf(100)]!++;
    b[bucketOf(1_000_000)]!++;
    const merged = new Array<number>(BUCKETS).fill(0);
    mergeInto(merged, a);
    mergeInto(merged, b);
    const summary = summarize(merged, 1_000_321);
    expect(summary.count).toBe(100);
    expect(summary.p50Ns).toBeGreaterThan(91);
    expect(summary.p50Ns).toBeLessThan(109);
    // The 99th of 100 values is still a 100 ns one; the slow one is only the maximum.
    expect(summary.p99Ns).toBeLessThan(109);
    expect(summary.maxNs).toBe(1_000_321);
  });

  test("Jain's index is 1 for equal shares and 1/n when one thread took everything", () => {
    expect(jainsIndex([5, 5, 5, 5])).toBe(1);
    expect(jainsIndex([8, 0, 0, 0])).toBe(0.25);
    expect(jainsIndex([3, 1])).toBeCloseTo(16 / 20, 10);
  });
});
