import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AbandonedMutexError,
  BlockingWaitError,
  Mutex,
  OperationCancelledError,
  RunspacePool,
  SynchronizationLockError,
  TimeoutError,
  WaitHandleKindError,
  WaitHandleNotFoundError,
  Semaphore,
  type RunspaceContext,
} from 'runspaces';
import { Gate } from '../helpers.js';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 4, maxRunspaces: 4 });
});
afterAll(() => pool.close());

/** Increments a plain (non-atomic) shared counter `n` times under the mutex, blocking. */
const incrementUnderMutex = (ctx: RunspaceContext<{ mutex: Mutex; counter: SharedArrayBuffer }>, n: number) => {
  const cells = new Int32Array(ctx.using.counter);
  for (let i = 0; i < n; i++) {
    ctx.using.mutex.waitOne();
    // Read, then write: a second owner at any moment would lose updates.
    const seen = cells[0]!;
    if (Atomics.add(cells, 1, 1) !== 0) throw new Error('two owners at once');
    cells[0] = seen + 1;
    Atomics.sub(cells, 1, 1);
    ctx.using.mutex.releaseMutex();
  }
};

describe('Mutex: exclusion', () => {
  test('4 runspaces × 100k increments of a plain counter under the mutex lose nothing', async () => {
    const mutex = new Mutex();
    const counter = new Int32Array(new SharedArrayBuffer(8));
    await Promise.all(Array.from({ length: 4 }, () => pool.invoke(incrementUnderMutex, { args: [100_000], using: { mutex, counter: counter.buffer } })));
    expect(counter[0]).toBe(400_000);
  });

  test('mixed waiters, blocking runspaces and async main-thread tasks, never overlap', async () => {
    const mutex = new Mutex();
    const counter = new Int32Array(new SharedArrayBuffer(8));
    const runspaces = Array.from({ length: 3 }, () => pool.invoke(incrementUnderMutex, { args: [20_000], using: { mutex, counter: counter.buffer } }));
    const mainTasks = Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 2_000; i++) {
        await mutex.withLock(async () => {
          const seen = counter[0]!;
          if (Atomics.add(counter, 1, 1) !== 0) throw new Error('two owners at once');
          if (i % 50 === 0) await Promise.resolve();
          counter[0] = seen + 1;
          Atomics.sub(counter, 1, 1);
        });
      }
    });
    await Promise.all([...runspaces, ...mainTasks]);
    expect(counter[0]).toBe(3 * 20_000 + 4 * 2_000);
  });

  test('two async tasks of one thread never both hold it', async () => {
    const mutex = new Mutex();
    let inside = 0;
    let maxInside = 0;
    await Promise.all(Array.from({ length: 20 }, async () => {
      for (let i = 0; i < 50; i++) {
        await mutex.acquire();
        inside++;
        maxInside = Math.max(maxInside, inside);
        await new Promise((resolve) => setImmediate(resolve));
        inside--;
        mutex.releaseMutex();
      }
    }));
    expect(maxInside).toBe(1);
  });
});

describe('Mutex: ownership and recursion', () => {
  test('inside withLock, nested withLock and acquire re-enter; the count must balance', async () => {
    const mutex = new Mutex();
    const order: string[] = [];
    await mutex.withLock(async () => {
      await mutex.withLock(async () => { order.push('nested withLock'); });
      expect(await mutex.acquire()).toBe(true);
      order.push('nested acquire');
      mutex.releaseMutex();
    });
    expect(order).toEqual(['nested withLock', 'nested acquire']);
    expect(await mutex.acquire({ timeout: 0 })).toBe(true);
    mutex.releaseMutex();
  });

  test('while a withLock holds it, an unrelated task of the same thread waits, and cannot release it', async () => {
    const mutex = new Mutex();
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    const owner = mutex.withLock(() => held);
    await Promise.resolve();
    expect(await mutex.acquire({ timeout: 20 })).toBe(false);
    expect(() => mutex.releaseMutex()).toThrow(SynchronizationLockError);
    release();
    await owner;
    expect(await mutex.acquire({ timeout: 1000 })).toBe(true);
    mutex.releaseMutex();
  });

  test('a runspace re-enters with waitOne and must release as many times', async () => {
    const mutex = new Mutex();
    const counts = await pool.invoke((ctx) => {
      const m = ctx.using.mutex as Mutex;
      m.waitOne();
      m.waitOne();
      m.releaseMutex();
      const stillMine = !m.waitOne(0) ? 'lost' : 'mine';
      m.releaseMutex();
      m.releaseMutex();
      let extra = 'none';
      try { m.releaseMutex(); } catch (error) { extra = (error as Error).name; }
      return [stillMine, extra];
    }, { using: { mutex } });
    expect(counts).toEqual(['mine', 'SynchronizationLockError']);
    expect(await mutex.acquire({ timeout: 0 })).toBe(true);
    mutex.releaseMutex();
  });

  test('releasing a mutex held by another thread throws SynchronizationLockError', async () => {
    const mutex = new Mutex();
    const gate = new Gate();
    const holder = pool.invoke((ctx) => {
      const m = ctx.using.mutex as Mutex;
      m.waitOne();
      const cells = new Int32Array(ctx.using.gate as SharedArrayBuffer);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      Atomics.wait(cells, 0, 0);
      m.releaseMutex();
    }, { using: { mutex, gate: gate.buffer } });
    await gate.arrivals(1);
    expect(() => mutex.releaseMutex()).toThrow(SynchronizationLockError);
    gate.open();
    await holder;
  });

  test('initiallyOwned: the creator holds it at once', async () => {
    const mutex = new Mutex(true);
    expect(await pool.invoke((ctx) => (ctx.using.mutex as Mutex).waitOne(0), { using: { mutex } })).toBe(false);
    mutex.releaseMutex();
    expect(await pool.invoke((ctx) => { const m = ctx.using.mutex as Mutex; const got = m.waitOne(0); if (got) m.releaseMutex(); return got; }, { using: { mutex } })).toBe(true);
  });
});

describe('Mutex: waiting', () => {
  test('waitOne on the main thread is refused with an error pointing to acquire', () => {
    const mutex = new Mutex();
    expect(() => mutex.waitOne()).toThrow(BlockingWaitError);
    expect(() => mutex.waitOne()).toThrow(/acquire/);
  });

  test('a timed-out wait returns false and leaves nothing held', async () => {
    const mutex = new Mutex(true);
    const rs = await pool.acquire();
    try {
      expect(await rs.invoke((ctx) => (ctx.using.m as Mutex).waitOne(10), { using: { m: mutex } })).toBe(false);
      mutex.releaseMutex();
      // Had the timed-out wait left anything held, this would fail.
      expect(await mutex.acquire({ timeout: 0 })).toBe(true);
      mutex.releaseMutex();
      expect(await rs.invoke((ctx) => { const m = ctx.using.m as Mutex; const got = m.waitOne(0); m.releaseMutex(); return got; }, { using: { m: mutex } })).toBe(true);
    } finally {
      rs.release();
    }
  });

  test('an aborted acquire rejects, holds nothing, and leaves no waiter that swallows a wake-up', async () => {
    const mutex = new Mutex();
    expect(await mutex.acquire()).toBe(true);
    const controller = new AbortController();
    const aborted = mutex.acquire({ signal: controller.signal });
    const patient = mutex.acquire({ timeout: 5_000 });
    controller.abort();
    await expect(aborted).rejects.toBeInstanceOf(OperationCancelledError);
    mutex.releaseMutex();
    expect(await patient).toBe(true);
    mutex.releaseMutex();
  });

  test('withLock with a timeout throws TimeoutError when the mutex stays held', async () => {
    const mutex = new Mutex();
    await mutex.acquire();
    const other = new Mutex();
    void other;
    await expect(pool.invoke(async (ctx) => {
      await (ctx.using.m as Mutex).withLock(() => 'never', { timeout: 10 });
    }, { using: { m: mutex } })).rejects.toBeInstanceOf(TimeoutError);
    mutex.releaseMutex();
  });

  test('invalid timeouts are refused', async () => {
    const mutex = new Mutex();
    await expect(mutex.acquire({ timeout: -5 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});

describe('Mutex: abandonment', () => {
  test('a runspace that dies holding the mutex hands it to the next acquirer, flagged, within milliseconds', async () => {
    const mutex = new Mutex();
    const gate = new Gate();
    const dying = pool.invoke((ctx) => {
      (ctx.using.m as Mutex).waitOne();
      const cells = new Int32Array(ctx.using.gate as SharedArrayBuffer);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      Atomics.wait(cells, 0, 0);
      process.exit(9);
    }, { using: { m: mutex, gate: gate.buffer } }).catch((e: unknown) => e);
    await gate.arrivals(1);
    const waiter = mutex.acquire().then(() => 'plain', (e: unknown) => e);
    gate.open();
    const outcome = await waiter;
    expect(outcome).toBeInstanceOf(AbandonedMutexError);
    expect((outcome as AbandonedMutexError).mutex).toBe(mutex);
    expect(await dying).toMatchObject({ code: 'ERR_RUNSPACE_BROKEN' });
    // The new owner holds it: others cannot take it until it is released.
    expect(await pool.invoke((ctx) => (ctx.using.m as Mutex).waitOne(0), { using: { m: mutex } })).toBe(false);
    mutex.releaseMutex();
    expect(await mutex.acquire({ timeout: 0 })).toBe(true);
    mutex.releaseMutex();
  });

  test("by the time a runspace's death is reported, its mutexes are free and flagged", async () => {
    const mutex = new Mutex();
    await expect(pool.invoke((ctx) => { (ctx.using.m as Mutex).waitOne(); process.exit(2); }, { using: { m: mutex } }))
      .rejects.toMatchObject({ code: 'ERR_RUNSPACE_BROKEN' });
    await expect(mutex.acquire({ timeout: 0 })).rejects.toBeInstanceOf(AbandonedMutexError);
    mutex.releaseMutex();
  });

  test('a runspace recycled for ignoring cancellation abandons its mutex too; withLock can continue', async () => {
    await using recycling = await RunspacePool.open({ maxRunspaces: 1, cancelGracePeriod: 20 });
    const mutex = new Mutex();
    const gate = new Gate();
    const controller = new AbortController();
    const stuck = recycling.invoke((ctx) => {
      (ctx.using.m as Mutex).waitOne();
      const cells = new Int32Array(ctx.using.gate as SharedArrayBuffer);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      for (;;);
    }, { using: { m: mutex, gate: gate.buffer }, signal: controller.signal }).catch((e: unknown) => e);
    await gate.arrivals(1);
    controller.abort();
    const info = await mutex.withLock((lock) => lock, { onAbandoned: 'continue' });
    expect(info).toEqual({ abandoned: true });
    expect(await stuck).toMatchObject({ runspaceRecycled: true });
  });

  test('over many deaths, the mutex never has two owners and every survivor finishes', async () => {
    const mutex = new Mutex();
    const counter = new Int32Array(new SharedArrayBuffer(8));
    const outcomes = await Promise.allSettled(Array.from({ length: 24 }, (_, i) => pool.invoke((ctx, index: number) => {
      const m = ctx.using.m as Mutex;
      const cells = new Int32Array(ctx.using.counter as SharedArrayBuffer);
      for (let k = 0; k < 500; k++) {
        try {
          m.waitOne();
        } catch (error) {
          if ((error as Error).name !== 'AbandonedMutexError') throw error;
          // The owner died inside: repair what the mutex protects before trusting it.
          Atomics.store(cells, 1, 0);
        }
        if (Atomics.add(cells, 1, 1) !== 0) throw new Error('two owners at once');
        if (index % 4 === 0 && k === 250) process.exit(1);
        cells[0] = cells[0]! + 1;
        Atomics.sub(cells, 1, 1);
        m.releaseMutex();
      }
    }, { args: [i], using: { m: mutex, counter: counter.buffer } })));
    const died = outcomes.filter((o) => o.status === 'rejected');
    expect(died).toHaveLength(6);
    for (const o of died) expect((o as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_RUNSPACE_BROKEN' });
    // Each dead runspace stopped inside its critical section, before counting that round.
    expect(counter[0]).toBe(18 * 500 + 6 * 250);
  });
});

describe('named mutexes', () => {
  test('the same name is the same lock in every runspace; Local\\ and bare names are equal', async () => {
    const { mutex, createdNew } = Mutex.open('Local\\named-test-1');
    expect(createdNew).toBe(true);
    expect(Mutex.open('named-test-1').createdNew).toBe(false);
    await mutex.acquire();
    const seen = await pool.invoke(async () => {
      const { Mutex: M } = await import('runspaces');
      const m = M.openExisting('named-test-1');
      return [m.name, m.waitOne(0)];
    });
    expect(seen).toEqual(['named-test-1', false]);
    mutex.releaseMutex();
  });

  test('openExisting of an unknown name throws; tryOpenExisting returns undefined', () => {
    expect(() => Mutex.openExisting('no-such-mutex')).toThrow(WaitHandleNotFoundError);
    expect(Mutex.tryOpenExisting('no-such-mutex')).toBeUndefined();
  });

  test('a name held by another kind of primitive cannot be opened as a mutex', () => {
    Semaphore.open('kind-clash', 1, 1);
    expect(() => Mutex.open('kind-clash')).toThrow(WaitHandleKindError);
    expect(() => Mutex.openExisting('kind-clash')).toThrow(WaitHandleKindError);
  });

  // dotnet/runtime MutexTests, SemaphoreTests, EventWaitHandleTests: NameUsedByOtherSynchronizationPrimitive.
  // TryOpenExisting returns false there; here, undefined, as its TSDoc says.
  test('tryOpenExisting on a name another kind holds gives undefined, for every kind', async () => {
    const { AutoResetEvent, ManualResetEvent, ReaderWriterLock } = await import('runspaces');
    Mutex.open('held-by-a-mutex');
    expect(Semaphore.tryOpenExisting('held-by-a-mutex')).toBeUndefined();
    expect(AutoResetEvent.tryOpenExisting('held-by-a-mutex')).toBeUndefined();
    expect(ManualResetEvent.tryOpenExisting('held-by-a-mutex')).toBeUndefined();
    expect(ReaderWriterLock.tryOpenExisting('held-by-a-mutex')).toBeUndefined();
    Semaphore.open('held-by-a-semaphore', 1, 1);
    expect(Mutex.tryOpenExisting('held-by-a-semaphore')).toBeUndefined();
    expect(Mutex.tryOpenExisting('held-by-a-mutex')).toBeInstanceOf(Mutex);
  });

  test('bad names, and Global\\ names for other kinds, are refused with a clear error', () => {
    expect(() => Semaphore.open('Global\\deploy', 1, 1)).toThrow(/machine-wide/);
    expect(() => Mutex.open('')).toThrow(/name/);
    expect(() => Mutex.open('x'.repeat(200))).toThrow(/128/);
  });

  test('initiallyOwned applies only to the creator', async () => {
    const first = Mutex.open('owned-once', { initiallyOwned: true });
    const second = Mutex.open('owned-once', { initiallyOwned: true });
    expect([first.createdNew, second.createdNew]).toEqual([true, false]);
    expect(await pool.invoke(async () => (await import('runspaces')).Mutex.openExisting('owned-once').waitOne(0))).toBe(false);
    first.mutex.releaseMutex();
  });

  test('many runspaces creating one name at once get one lock, and exactly one creates it', async () => {
    const created = await Promise.all(Array.from({ length: 40 }, (_, i) => pool.invoke(async (ctx, k: number) => {
      const { Mutex: M } = await import('runspaces');
      return M.open(`race-${Math.floor(k / 10)}`).createdNew;
    }, { args: [i] })));
    expect(created.filter(Boolean)).toHaveLength(4);
  });
});

describe('crossing threads', () => {
  test('a mutex returned from a runspace is the same lock on the main thread', async () => {
    const mutex = await pool.invoke(async () => {
      const { Mutex: M } = await import('runspaces');
      const m = new M();
      m.waitOne();
      return m;
    });
    expect(mutex).toBeInstanceOf(Mutex);
    expect(await mutex.acquire({ timeout: 0 })).toBe(false);
  });

  test('a mutex nested in using values and arguments arrives as a Mutex', async () => {
    const mutex = new Mutex();
    const kinds = await pool.invoke((ctx, args: { locks: Mutex[] }) => [
      (ctx.using.nested as { m: Mutex }).m.constructor.name,
      args.locks[0]!.constructor.name,
    ], { using: { nested: { m: mutex } }, args: [{ locks: [mutex] }] });
    expect(kinds).toEqual(['Mutex', 'Mutex']);
  });
});
