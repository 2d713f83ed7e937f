import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { InvalidOperationError, OperationCancelledError, ReaderWriterLock, RunspacePool, SynchronizationLockError, type RunspaceContext } from 'runspaces';
import { Gate } from '../helpers.js';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 4, maxRunspaces: 4 });
});
afterAll(() => pool.close());

type Using = RunspaceContext<{ lock: ReaderWriterLock; cells: SharedArrayBuffer }>;

describe('ReaderWriterLock', () => {
  test('4 runspaces × 100k increments under the write lock lose nothing', async () => {
    const lock = new ReaderWriterLock();
    const cells = new Int32Array(new SharedArrayBuffer(4));
    await Promise.all(Array.from({ length: 4 }, () => pool.invoke((ctx: Using, n: number) => {
      const c = new Int32Array(ctx.using.cells);
      for (let i = 0; i < n; i++) {
        ctx.using.lock.enterWriteLock();
        c[0] = c[0]! + 1;
        ctx.using.lock.exitWriteLock();
      }
    }, { args: [100_000], using: { lock, cells: cells.buffer } })));
    expect(cells[0]).toBe(400_000);
  });

  test('mixed writers, blocking runspaces and async main-thread tasks, lose nothing', async () => {
    const lock = new ReaderWriterLock();
    const cells = new Int32Array(new SharedArrayBuffer(8));
    const runspaces = Array.from({ length: 3 }, () => pool.invoke((ctx: Using, n: number) => {
      const c = new Int32Array(ctx.using.cells);
      for (let i = 0; i < n; i++) {
        ctx.using.lock.enterWriteLock();
        if (Atomics.add(c, 1, 1) !== 0) throw new Error('two writers at once');
        c[0] = c[0]! + 1;
        Atomics.sub(c, 1, 1);
        ctx.using.lock.exitWriteLock();
      }
    }, { args: [20_000], using: { lock, cells: cells.buffer } }));
    const main = Array.from({ length: 3 }, async () => {
      for (let i = 0; i < 1_000; i++) {
        await lock.withWriteLock(async () => {
          if (Atomics.add(cells, 1, 1) !== 0) throw new Error('two writers at once');
          const seen = cells[0]!;
          if (i % 100 === 0) await Promise.resolve();
          cells[0] = seen + 1;
          Atomics.sub(cells, 1, 1);
        });
      }
    });
    await Promise.all([...runspaces, ...main]);
    expect(cells[0]).toBe(3 * 20_000 + 3 * 1_000);
  });

  test('readers share the lock: a reader gets in while another holds it', async () => {
    const lock = new ReaderWriterLock();
    const gate = new Gate();
    const holder = pool.invoke((ctx) => {
      const l = ctx.using.lock as ReaderWriterLock;
      l.enterReadLock();
      const cells = new Int32Array(ctx.using.gate as SharedArrayBuffer);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      Atomics.wait(cells, 0, 0);
      l.exitReadLock();
    }, { using: { lock, gate: gate.buffer } });
    await gate.arrivals(1);
    expect(await lock.acquireRead({ timeout: 0 })).toBe(true);
    expect(lock.currentReadCount).toBe(2);
    expect(await lock.acquireWrite({ timeout: 0 })).toBe(false);
    lock.exitReadLock();
    gate.open();
    await holder;
    expect(lock.currentReadCount).toBe(0);
  });

  test('in a random mix of readers and writers, a writer is never inside with anyone', async () => {
    const lock = new ReaderWriterLock();
    // [readers inside, max readers seen, writers inside, overlap seen]
    const cells = new Int32Array(new SharedArrayBuffer(16));
    await Promise.all(Array.from({ length: 4 }, (_, i) => pool.invoke((ctx: Using, index: number) => {
      const c = new Int32Array(ctx.using.cells);
      for (let k = 0; k < 3_000; k++) {
        if ((k + index) % 10 === 0) {
          ctx.using.lock.enterWriteLock();
          if (Atomics.add(c, 2, 1) !== 0 || Atomics.load(c, 0) !== 0) Atomics.store(c, 3, 1);
          Atomics.sub(c, 2, 1);
          ctx.using.lock.exitWriteLock();
        } else {
          ctx.using.lock.enterReadLock();
          const now = Atomics.add(c, 0, 1) + 1;
          if (Atomics.load(c, 2) !== 0) Atomics.store(c, 3, 1);
          for (let seen = Atomics.load(c, 1); now > seen; seen = Atomics.load(c, 1)) Atomics.compareExchange(c, 1, seen, now);
          for (let spin = 0; spin < 200; spin++);
          Atomics.sub(c, 0, 1);
          ctx.using.lock.exitReadLock();
        }
      }
    }, { args: [i], using: { lock, cells: cells.buffer } })));
    expect(cells[3]).toBe(0);
  });

  test('heavy reader/writer churn never loses a wake-up (all 4 runspaces finish)', { timeout: 20_000 }, async () => {
    const lock = new ReaderWriterLock();
    const cells = new Int32Array(new SharedArrayBuffer(4));
    const finished = await Promise.all(Array.from({ length: 4 }, (_, i) => pool.invoke((ctx: Using, index: number) => {
      const c = new Int32Array(ctx.using.cells);
      for (let k = 0; k < 40_000; k++) {
        if ((k * 7 + index) % 3 === 0) {
          ctx.using.lock.enterWriteLock();
          c[0] = c[0]! + 1;
          ctx.using.lock.exitWriteLock();
        } else {
          ctx.using.lock.enterReadLock();
          // A moment inside, so writers queue up behind readers and hold new readers back.
          for (let spin = 0; spin < 300; spin++);
          ctx.using.lock.exitReadLock();
        }
      }
      return true;
    }, { args: [i], using: { lock, cells: cells.buffer } })));
    expect(finished).toEqual([true, true, true, true]);
    expect(cells[0]).toBe(Array.from({ length: 4 }, (_, index) => Array.from({ length: 40_000 }, (_, k) => ((k * 7 + index) % 3 === 0 ? 1 : 0) as number).reduce((a, b) => a + b, 0)).reduce((a, b) => a + b, 0));
  });

  test('a waiting writer blocks new readers, so it gets in while readers keep coming', async () => {
    const lock = new ReaderWriterLock();
    const gate = new Gate();
    // A reader holds the lock until the gate opens.
    const holder = pool.invoke((ctx) => {
      const l = ctx.using.lock as ReaderWriterLock;
      l.enterReadLock();
      const cells = new Int32Array(ctx.using.gate as SharedArrayBuffer);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      Atomics.wait(cells, 0, 0);
      l.exitReadLock();
    }, { using: { lock, gate: gate.buffer } });
    await gate.arrivals(1);
    const writer = lock.acquireWrite({ timeout: 10_000 });
    // With a writer waiting, a new reader must wait too.
    expect(await lock.acquireRead({ timeout: 20 })).toBe(false);
    gate.open();
    expect(await writer).toBe(true);
    expect(lock.isWriteLockHeld).toBe(true);
    lock.exitWriteLock();
    await holder;
    expect(await lock.acquireRead({ timeout: 0 })).toBe(true);
    lock.exitReadLock();
  });

  test('a writer that times out lets the readers it held back in', async () => {
    const lock = new ReaderWriterLock();
    expect(await lock.acquireRead()).toBe(true);
    const writer = lock.acquireWrite({ timeout: 20 });
    const reader = lock.acquireRead({ timeout: 5_000 });
    expect(await writer).toBe(false);
    expect(await reader).toBe(true);
    lock.exitReadLock();
    lock.exitReadLock();
    expect(lock.currentReadCount).toBe(0);
  });

  test('an aborted acquire leaves nothing held and no writer waiting', async () => {
    const lock = new ReaderWriterLock();
    await lock.acquireRead();
    const controller = new AbortController();
    const writer = lock.acquireWrite({ signal: controller.signal });
    controller.abort();
    await expect(writer).rejects.toBeInstanceOf(OperationCancelledError);
    expect(await lock.acquireRead({ timeout: 0 })).toBe(true);
    lock.exitReadLock();
    lock.exitReadLock();
  });

  test('exiting a lock not held throws SynchronizationLockError; a runspace re-entering its write lock throws', async () => {
    const lock = new ReaderWriterLock();
    expect(() => lock.exitReadLock()).toThrow(SynchronizationLockError);
    expect(() => lock.exitWriteLock()).toThrow(SynchronizationLockError);
    const name = await pool.invoke((ctx) => {
      const l = ctx.using.lock as ReaderWriterLock;
      l.enterWriteLock();
      try { l.enterWriteLock(); return 'entered twice'; } catch (error) { return (error as Error).name; } finally { l.exitWriteLock(); }
    }, { using: { lock } });
    expect(name).toBe(InvalidOperationError.name);
  });

  // dotnet/runtime ReaderWriterLockSlimTests.DeadlockAvoidance: the write lock held, entering the read lock
  // must throw (LockRecursionException there), not wait for itself forever.
  test('a runspace that holds the write lock and enters the read lock is refused, and still holds the write lock', async () => {
    const lock = new ReaderWriterLock();
    const outcome = await pool.invoke((ctx) => {
      const l = ctx.using.lock as ReaderWriterLock;
      l.enterWriteLock();
      let refused = 'entered';
      try {
        l.enterReadLock();
      } catch (error) {
        refused = (error as Error).name;
      }
      const timed = (() => { try { return l.tryEnterReadLock(0); } catch (error) { return (error as Error).name; } })();
      l.exitWriteLock();
      l.enterReadLock();
      l.exitReadLock();
      return [refused, timed];
    }, { using: { lock } });
    expect(outcome).toEqual([InvalidOperationError.name, InvalidOperationError.name]);
  });

  test('a writer that dies inside frees the lock', async () => {
    const lock = new ReaderWriterLock();
    await expect(pool.invoke((ctx) => { (ctx.using.lock as ReaderWriterLock).enterWriteLock(); process.exit(4); }, { using: { lock } }))
      .rejects.toMatchObject({ code: 'ERR_RUNSPACE_BROKEN' });
    expect(await lock.acquireWrite({ timeout: 0 })).toBe(true);
    lock.exitWriteLock();
  });

  test('withReadLock and withWriteLock release whatever happens; blocking forms are refused on the main thread', async () => {
    const lock = new ReaderWriterLock();
    await expect(lock.withWriteLock(() => { throw new Error('inside'); })).rejects.toThrow('inside');
    expect(await lock.withReadLock(() => 'read')).toBe('read');
    expect(lock.isWriteLockHeld).toBe(false);
    expect(() => lock.enterReadLock()).toThrow(/acquireRead/);
  });

  test('named reader-writer locks are shared by name', async () => {
    const { lock, createdNew } = ReaderWriterLock.open('Local\\cache');
    expect(createdNew).toBe(true);
    await lock.acquireWrite();
    expect(await pool.invoke(async () => (await import('runspaces')).ReaderWriterLock.openExisting('cache').tryEnterReadLock(0))).toBe(false);
    lock.exitWriteLock();
  });
});
