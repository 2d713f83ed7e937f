import { describe, expect, test } from 'vitest';
import { ParallelItemError, RunspaceBrokenError, RunspacePool, type ParallelContext } from 'runspaces';

/** Returns its item, except the item named by `using.killer`, which ends its runspace. */
const dieOnce = (item: number, ctx: ParallelContext<{ killer: number }>): number => {
  if (item === ctx.using.killer) process.exit(9);
  return item;
};

describe('a runspace dying mid-loop', () => {
  test('fails only the items it held; every other item still produces its output', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const n = 20_000;
    for (const killer of [0, 777, n - 1]) {
      const loop = pool.forEachParallel(Array.from({ length: n }, (_, i) => i), dieOnce, { using: { killer }, errorAction: 'continue' });
      const outputs = await loop.toArray();
      const failed = loop.errors.map((e) => e.index);
      expect(failed).toContain(killer);
      for (const error of loop.errors) {
        expect(error).toBeInstanceOf(ParallelItemError);
        expect(error.cause).toBeInstanceOf(RunspaceBrokenError);
        expect(error.cause).toMatchObject({ exitCode: 9 });
      }
      // Each index exactly once: as an output or as a failure, never both, never lost.
      const seen = new Uint8Array(n);
      for (const index of [...outputs, ...failed]) seen[index]++;
      expect(seen.every((count) => count === 1)).toBe(true);
      // Only the dead runspace's chunk: far fewer than the loop's items.
      expect(failed.length).toBeLessThan(n / 2);
    }
  });

  test("under errorAction 'stop', the death ends the loop with the item's error", async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const error = await pool.forEachParallel(Array.from({ length: 100 }, (_, i) => i), dieOnce, {
      using: { killer: 40 }, errorAction: 'stop',
    }).toArray().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ParallelItemError);
    expect((error as ParallelItemError).cause).toBeInstanceOf(RunspaceBrokenError);
    expect(await pool.invoke(() => 'pool still serves')).toBe('pool still serves');
  });

  test('with ordered output, the outputs after a death still come in input order', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const loop = pool.forEachParallel(Array.from({ length: 5000 }, (_, i) => i), dieOnce, { using: { killer: 2500 }, ordered: true, errorAction: 'continue' });
    const outputs = await loop.toArray();
    const failed = new Set(loop.errors.map((e) => e.index));
    expect(outputs).toEqual(Array.from({ length: 5000 }, (_, i) => i).filter((i) => !failed.has(i)));
  });
});
