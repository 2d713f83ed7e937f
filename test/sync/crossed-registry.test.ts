import { execFile } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { Mutex, RunspaceBrokenError, RunspacePool, type RunspaceContext } from 'runspaces';

type Session = RunspaceContext<{ m: Mutex }>;

describe('the registry of primitives that crossed to runspaces', () => {
  test('a fresh Mutex per call is forgotten once no runspace holds it: nothing stays tracked, the heap stays flat', async () => {
    const script = new URL('../fixtures/crossed-primitives.js', import.meta.url);
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', script.pathname, '20000'], { timeout: 60_000 }, (error, out) => (error ? reject(error) : resolve(out)));
    });
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as { calls: number; trackedAfter: number; heapGrowthMiB: number };
    expect(report.calls).toBe(20_000);
    expect(report.trackedAfter).toBe(0);
    // 20k registrations held would be about 5 MiB (about 260 bytes each).
    expect(report.heapGrowthMiB).toBeLessThan(2);
  });

  test('a mutex the main thread no longer holds is still recovered when its owning runspace dies', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
    const owner = await pool.acquire();
    const waiter = await pool.acquire();
    {
      const mutex = new Mutex();
      await owner.invoke((ctx: Session) => void ctx.session.set('m', ctx.using.m), { using: { m: mutex } });
      await waiter.invoke((ctx: Session) => void ctx.session.set('m', ctx.using.m), { using: { m: mutex } });
    }
    await owner.invoke((ctx) => void ctx.session.get<Mutex>('m')!.waitOne());
    const outcome = waiter.invoke((ctx) => {
      try {
        ctx.session.get<Mutex>('m')!.waitOne(10_000);
        return 'acquired';
      } catch (error) {
        return (error as Error).name;
      }
    });
    await expect(owner.invoke(() => process.exit(4))).rejects.toBeInstanceOf(RunspaceBrokenError);
    expect(await outcome).toBe('AbandonedMutexError');
    waiter.release();
  });
});
