import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { InvalidArgumentError, OperationCancelledError, RunspacePool, Semaphore, SemaphoreFullError, type RunspaceContext } from 'runspaces';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 4, maxRunspaces: 4 });
});
afterAll(() => pool.close());

describe('Semaphore', () => {
  test('Semaphore(1, 1): 4 runspaces × 100k increments of a plain counter lose nothing', async () => {
    const semaphore = new Semaphore(1, 1);
    const counter = new Int32Array(new SharedArrayBuffer(4));
    await Promise.all(Array.from({ length: 4 }, () => pool.invoke((ctx: RunspaceContext<{ s: Semaphore; c: SharedArrayBuffer }>, n: number) => {
      const cells = new Int32Array(ctx.using.c);
      for (let i = 0; i < n; i++) {
        ctx.using.s.waitOne();
        cells[0] = cells[0]! + 1;
        ctx.using.s.release();
      }
    }, { args: [100_000], using: { s: semaphore, c: counter.buffer } })));
    expect(counter[0]).toBe(400_000);
    expect(semaphore.currentCount).toBe(1);
  });

  test('at most maximumCount holders at once, across runspaces and main-thread tasks', async () => {
    const semaphore = new Semaphore(3, 3);
    const inside = new Int32Array(new SharedArrayBuffer(8));
    const runspaces = Array.from({ length: 4 }, () => pool.invoke((ctx, n: number) => {
      const s = ctx.using.s as Semaphore;
      const cells = new Int32Array(ctx.using.inside as SharedArrayBuffer);
      for (let i = 0; i < n; i++) {
        s.waitOne();
        const now = Atomics.add(cells, 0, 1) + 1;
        for (let seen = Atomics.load(cells, 1); now > seen; seen = Atomics.load(cells, 1)) Atomics.compareExchange(cells, 1, seen, now);
        Atomics.sub(cells, 0, 1);
        s.release();
      }
    }, { args: [20_000], using: { s: semaphore, inside: inside.buffer } }));
    const main = Array.from({ length: 3 }, async () => {
      for (let i = 0; i < 500; i++) {
        await semaphore.acquire();
        Atomics.add(inside, 0, 1);
        await Promise.resolve();
        Atomics.sub(inside, 0, 1);
        semaphore.release();
      }
    });
    await Promise.all([...runspaces, ...main]);
    expect(inside[1]).toBeLessThanOrEqual(3);
    expect(semaphore.currentCount).toBe(3);
  });

  test('exactly maximumCount permits can be held at once, by different threads', async () => {
    const semaphore = new Semaphore(3, 3);
    const rs = await pool.acquire();
    try {
      expect(await rs.invoke((ctx) => { const s = ctx.using.s as Semaphore; return [s.waitOne(0), s.waitOne(0)]; }, { using: { s: semaphore } })).toEqual([true, true]);
      expect(await semaphore.acquire({ timeout: 0 })).toBe(true);
      expect(await semaphore.acquire({ timeout: 0 })).toBe(false);
      expect(await rs.invoke((ctx) => (ctx.using.s as Semaphore).waitOne(0), { using: { s: semaphore } })).toBe(false);
      expect(semaphore.release(3)).toBe(0);
    } finally {
      rs.release();
    }
  });

  test('release returns the previous count; releasing past the maximum throws and changes nothing', () => {
    const semaphore = new Semaphore(0, 2);
    expect(semaphore.release()).toBe(0);
    expect(() => semaphore.release(2)).toThrow(SemaphoreFullError);
    expect(semaphore.currentCount).toBe(1);
    expect(semaphore.release(1)).toBe(1);
    expect(() => semaphore.release()).toThrow(SemaphoreFullError);
    expect(semaphore.currentCount).toBe(2);
  });

  test.each([
    [() => new Semaphore(-1, 1), 'initialCount'],
    [() => new Semaphore(2, 1), 'initialCount'],
    [() => new Semaphore(0, 0), 'maximumCount'],
    [() => new Semaphore(0.5, 1), 'initialCount'],
    [() => new Semaphore(0, 1).release(0), 'releaseCount'],
  ])('argument errors as in .NET (%#: %s)', (make, argument) => {
    expect(make).toThrow(InvalidArgumentError);
    expect(make).toThrow(argument);
  });

  test('a timed-out waitOne returns false and takes nothing', async () => {
    const semaphore = new Semaphore(0, 1);
    expect(await pool.invoke((ctx) => (ctx.using.s as Semaphore).waitOne(10), { using: { s: semaphore } })).toBe(false);
    semaphore.release();
    expect(semaphore.currentCount).toBe(1);
  });

  test('an aborted acquire takes nothing and the next release reaches a live waiter', async () => {
    const semaphore = new Semaphore(0, 1);
    const controller = new AbortController();
    const aborted = semaphore.acquire({ signal: controller.signal });
    const patient = semaphore.acquire({ timeout: 5_000 });
    controller.abort();
    await expect(aborted).rejects.toBeInstanceOf(OperationCancelledError);
    semaphore.release();
    expect(await patient).toBe(true);
    expect(semaphore.currentCount).toBe(0);
  });

  test('named semaphores are shared by name; the counts of a later open are ignored', async () => {
    const { semaphore, createdNew } = Semaphore.open('Local\\slots', 2, 5);
    expect(createdNew).toBe(true);
    const again = Semaphore.open('slots', 0, 1);
    expect(again.createdNew).toBe(false);
    expect(again.semaphore.maximumCount).toBe(5);
    await pool.invoke(async () => { (await import('runspaces')).Semaphore.openExisting('slots').waitOne(); });
    expect(semaphore.currentCount).toBe(1);
  });

  test('a blocking waitOne on the main thread is refused', () => {
    expect(() => new Semaphore(1, 1).waitOne()).toThrow(/acquire/);
  });
});
