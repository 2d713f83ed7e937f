import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AbandonedMutexError, Mutex, OperationCancelledError, RunspacePool } from 'runspaces';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
});
afterAll(() => pool.close());

describe('Mutex in fair mode', () => {
  test('waiters get the mutex in the order they began waiting', async () => {
    const mutex = new Mutex(false, { fair: true });
    expect(mutex.fair).toBe(true);
    await mutex.acquire();
    const order: number[] = [];
    const waiters = Array.from({ length: 10 }, (_, i) => mutex.acquire().then(() => {
      order.push(i);
      mutex.releaseMutex();
    }));
    mutex.releaseMutex();
    await Promise.all(waiters);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test('a newcomer of the same thread cannot barge in ahead of a waiter of that thread, in either mode', async () => {
    for (const fair of [true, false]) {
      const mutex = new Mutex(false, { fair });
      await mutex.acquire();
      const waiter = mutex.acquire();
      mutex.releaseMutex();
      expect(await mutex.acquire({ timeout: 0 })).toBe(false);
      await waiter;
      mutex.releaseMutex();
    }
  });

  test('async flows of one thread that release and ask again at once take turns instead of starving each other', async () => {
    const mutex = new Mutex();
    const order: string[] = [];
    const flow = async (name: string) => {
      for (let i = 0; i < 200; i++) {
        await mutex.acquire();
        order.push(name);
        mutex.releaseMutex();
      }
    };
    await Promise.all([flow('a'), flow('b')]);
    expect(order).toHaveLength(400);
    // Before the line, 'a' took all 200 before 'b' got one (its wake-up is a task, 'a''s retry a microtask).
    expect(order.indexOf('b')).toBeLessThan(3);
    expect(order.slice(0, 20).filter((name) => name === 'b').length).toBeGreaterThanOrEqual(9);
  });

  test('an aborted waiter at the head of the line passes the mutex on', async () => {
    const mutex = new Mutex(false, { fair: true });
    await mutex.acquire();
    const controller = new AbortController();
    const aborted = mutex.acquire({ signal: controller.signal });
    const next = mutex.acquire({ timeout: 5_000 });
    controller.abort();
    await expect(aborted).rejects.toBeInstanceOf(OperationCancelledError);
    mutex.releaseMutex();
    expect(await next).toBe(true);
    mutex.releaseMutex();
    expect(await mutex.acquire({ timeout: 0 })).toBe(true);
    mutex.releaseMutex();
  });

  test('a waiter that timed out leaves the mutex free, not handed to nobody', async () => {
    const mutex = new Mutex(false, { fair: true });
    const rs = await pool.acquire();
    try {
      await mutex.acquire();
      expect(await rs.invoke((ctx) => (ctx.using.m as Mutex).waitOne(10), { using: { m: mutex } })).toBe(false);
      mutex.releaseMutex();
      expect(await rs.invoke((ctx) => { const m = ctx.using.m as Mutex; const got = m.waitOne(0); if (got) m.releaseMutex(); return got; }, { using: { m: mutex } })).toBe(true);
    } finally {
      rs.release();
    }
  });

  test('2 runspaces and the main thread × many increments under a fair mutex lose nothing', async () => {
    const mutex = Mutex.open('fair-counter', { fair: true }).mutex;
    expect(mutex.fair).toBe(true);
    const cells = new Int32Array(new SharedArrayBuffer(8));
    const runspaces = [0, 1].map(() => pool.invoke((ctx, n: number) => {
      const m = ctx.using.m as Mutex;
      const c = new Int32Array(ctx.using.cells as SharedArrayBuffer);
      for (let i = 0; i < n; i++) {
        m.waitOne();
        if (Atomics.add(c, 1, 1) !== 0) throw new Error('two owners at once');
        c[0] = c[0]! + 1;
        Atomics.sub(c, 1, 1);
        m.releaseMutex();
      }
    }, { args: [10_000], using: { m: mutex, cells: cells.buffer } }));
    const main = (async () => {
      for (let i = 0; i < 2_000; i++) {
        await mutex.withLock(() => {
          if (Atomics.add(cells, 1, 1) !== 0) throw new Error('two owners at once');
          cells[0] = cells[0]! + 1;
          Atomics.sub(cells, 1, 1);
        });
      }
    })();
    await Promise.all([...runspaces, main]);
    expect(cells[0]).toBe(22_000);
  });

  test('a fair mutex abandoned by a dead runspace goes to its waiter, flagged', async () => {
    const mutex = new Mutex(false, { fair: true });
    await expect(pool.invoke((ctx) => { (ctx.using.m as Mutex).waitOne(); process.exit(3); }, { using: { m: mutex } })).rejects.toMatchObject({ code: 'ERR_RUNSPACE_BROKEN' });
    await expect(mutex.acquire({ timeout: 1000 })).rejects.toBeInstanceOf(AbandonedMutexError);
    mutex.releaseMutex();
  });
});
