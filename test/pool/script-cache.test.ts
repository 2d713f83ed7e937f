import { execFile } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { RunspacePool, type RunspaceContext } from 'runspaces';

describe('the script-block caches', () => {
  test('30k generated script blocks keep both caches bounded and both heaps flat', async () => {
    const script = new URL('../fixtures/generated-scripts.js', import.meta.url);
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', script.pathname, '30000'], { timeout: 90_000 }, (error, out) => (error ? reject(error) : resolve(out)));
    });
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as { scripts: number; sourcesKept: number; mainGrowthMiB: number; runspaceGrowthMiB: number };
    expect(report.scripts).toBe(30_000);
    expect(report.sourcesKept).toBeLessThanOrEqual(2_000);
    // Kept forever, 30k sources cost about 17 MiB on the main thread and more in the runspace.
    expect(report.mainGrowthMiB).toBeLessThan(5);
    expect(report.runspaceGrowthMiB).toBeLessThan(5);
  });

  test('a script block dropped from a runspace runs again when called again, with its session intact', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    const count = (ctx: RunspaceContext): number => {
      const next = (ctx.session.get<number>('n') ?? 0) + 1;
      ctx.session.set('n', next);
      return next;
    };
    expect(await pool.invoke(count)).toBe(1);
    // More distinct script blocks than a runspace keeps, sent in large batches behind each other.
    const others = Array.from({ length: 2_500 }, (_, i) => pool.invoke(new Function('ctx', `return ${i};`) as (ctx: RunspaceContext) => number));
    const again = pool.invoke(count);
    expect(await Promise.all(others)).toEqual(Array.from({ length: 2_500 }, (_, i) => i));
    expect(await again).toBe(2);
    expect(await pool.invoke(count)).toBe(3);
  });
});
