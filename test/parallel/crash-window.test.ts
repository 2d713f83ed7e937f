import { describe, expect, test } from 'vitest';
import { ParallelItemError, RunspaceBrokenError, RunspacePool, TimeoutError, type ParallelContext } from 'runspaces';

const dieOn = (item: number, ctx: ParallelContext<{ killers: number[] }>): number => {
  if (ctx.using.killers.includes(item)) process.exit(9);
  return item;
};

describe('a runspace dying mid-chunk', () => {
  test('fails exactly the item it was running; items that had finished keep their outputs', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const n = 20_000;
    const killers = [0, 777, 5_000, 9_999, 12_345, 17_000, n - 1];
    const loop = pool.forEachParallel(Array.from({ length: n }, (_, i) => i), dieOn, { using: { killers }, errorAction: 'continue' });
    const outputs = await loop.toArray();
    expect(loop.errors.map((e) => e.index).sort((a, b) => a - b)).toEqual(killers);
    for (const error of loop.errors) {
      expect(error).toBeInstanceOf(ParallelItemError);
      expect(error.cause).toBeInstanceOf(RunspaceBrokenError);
    }
    const seen = new Uint8Array(n);
    for (const index of outputs) seen[index]++;
    expect(outputs.length).toBe(n - killers.length);
    expect(seen.every((count, index) => count === (killers.includes(index) ? 0 : 1))).toBe(true);
  });

  test('a runspace recycled for a spinning item under a loop timeout keeps what its chunk finished before the last millisecond', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1, cancelGracePeriod: 200 });
    // Items 0..299 are trivial, so chunks are large (200 items with this highWaterMark); 300..389 take 50 µs
    // each; 390 spins and ignores its signal. Its chunk starts with about 100 trivial items.
    const spinner = 390;
    const loop = pool.forEachParallel(Array.from({ length: 400 }, (_, i) => i), (item: number, ctx: ParallelContext<{ spinner: number }>) => {
      if (item === ctx.using.spinner) for (;;);
      if (item >= 300) {
        const until = performance.now() + 0.05;
        while (performance.now() < until);
      }
      return item;
    }, { using: { spinner }, throttleLimit: 1, highWaterMark: 399, timeout: 1_500 });
    const outputs: number[] = [];
    const error = await (async () => {
      for await (const output of loop) outputs.push(output);
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    const delivered = new Set(outputs);
    const missing = Array.from({ length: spinner }, (_, i) => i).filter((i) => !delivered.has(i));
    // Kept whole, the chunk would lose about 190 finished items; in parts, at most its last millisecond (about 20).
    expect(missing.length).toBeLessThanOrEqual(40);
  });
});
