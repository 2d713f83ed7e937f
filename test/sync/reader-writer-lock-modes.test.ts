// ReaderWriterLock's upgradeable mode, recursion policy and per-thread state,
// with cases modelled on dotnet/runtime's ReaderWriterLockSlimTests
// (DeadlockAvoidance, InvalidExits, WritersAreMutuallyExclusiveFromReaders,
// UpgradeableReadersAreMutuallyExclusive, RecursiveReadLocks, ...).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { InvalidArgumentError, InvalidOperationError, ReaderWriterLock, RunspacePool, SynchronizationLockError, type RunspaceContext } from 'runspaces';
import { Gate } from '../helpers.js';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 3, maxRunspaces: 3 });
});
afterAll(() => pool.close());

type WithLock = RunspaceContext<{ lock: ReaderWriterLock }>;

/** Runs `fn` in a runspace with the lock as `ctx.using.lock`. */
const inRunspace = <T>(fn: (ctx: WithLock) => T, lock: ReaderWriterLock) => pool.invoke(fn, { using: { lock } });

describe('ReaderWriterLock: what a thread holds', () => {
  test('isReadLockHeld, isUpgradeableReadLockHeld, isWriteLockHeld and the recursive counts are this thread\'s', async () => {
    const lock = new ReaderWriterLock({ recursionPolicy: 'SupportsRecursion' });
    const seen = await inRunspace((ctx) => {
      const l = ctx.using.lock;
      const look = () => [l.isReadLockHeld, l.isUpgradeableReadLockHeld, l.isWriteLockHeld, l.recursiveReadCount, l.recursiveUpgradeCount, l.recursiveWriteCount];
      const states = [look()];
      l.enterReadLock();
      l.enterReadLock();
      states.push(look());
      l.exitReadLock();
      l.exitReadLock();
      l.enterUpgradeableReadLock();
      l.enterWriteLock();
      l.enterWriteLock();
      states.push(look());
      l.exitWriteLock();
      l.exitWriteLock();
      states.push(look());
      l.exitUpgradeableReadLock();
      states.push(look());
      return states;
    }, lock);
    expect(seen).toEqual([
      [false, false, false, 0, 0, 0],
      [true, false, false, 2, 0, 0],
      [false, true, true, 0, 1, 2],
      [false, true, false, 0, 1, 0],
      [false, false, false, 0, 0, 0],
    ]);
    // The main thread holds none of it.
    expect([lock.isReadLockHeld, lock.isUpgradeableReadLockHeld, lock.isWriteLockHeld]).toEqual([false, false, false]);
    expect(lock.currentReadCount).toBe(0);
  });

  test('waitingWriteCount counts writers waiting', async () => {
    const lock = new ReaderWriterLock();
    await lock.acquireRead();
    const writers = [lock.acquireWrite(), lock.acquireWrite()];
    expect(lock.waitingWriteCount).toBe(2);
    lock.exitReadLock();
    const first = await Promise.race(writers.map((writer, i) => writer.then(() => i)));
    expect(lock.waitingWriteCount).toBe(1);
    lock.exitWriteLock();
    expect(await writers[1 - first]).toBe(true);
    lock.exitWriteLock();
    expect(lock.waitingWriteCount).toBe(0);
  });
});

describe('ReaderWriterLock: recursion policy', () => {
  test('NoRecursion (the default) refuses every re-entry, and a reader asking to write, with InvalidOperationError', async () => {
    const lock = new ReaderWriterLock();
    expect(lock.recursionPolicy).toBe('NoRecursion');
    const outcomes = await inRunspace((ctx) => {
      const l = ctx.using.lock;
      const attempt = (fn: () => unknown) => { try { fn(); return 'entered'; } catch (error) { return (error as Error).name; } };
      const results: string[] = [];
      l.enterReadLock();
      results.push(attempt(() => l.enterReadLock()), attempt(() => l.enterWriteLock()), attempt(() => l.enterUpgradeableReadLock()));
      l.exitReadLock();
      l.enterWriteLock();
      results.push(attempt(() => l.enterWriteLock()), attempt(() => l.enterReadLock()), attempt(() => l.enterUpgradeableReadLock()));
      l.exitWriteLock();
      l.enterUpgradeableReadLock();
      results.push(attempt(() => l.enterUpgradeableReadLock()));
      // A downgrade (read while upgradeable) is allowed whatever the policy.
      results.push(attempt(() => l.enterReadLock()));
      l.exitReadLock();
      l.exitUpgradeableReadLock();
      return [...results, String(l.currentReadCount)];
    }, lock);
    const refused = InvalidOperationError.name;
    expect(outcomes).toEqual([refused, refused, refused, refused, refused, refused, refused, 'entered', '0']);
  });

  test('SupportsRecursion counts re-entries (read, write, read under write); a reader still cannot ask to write', async () => {
    const lock = new ReaderWriterLock({ recursionPolicy: 'SupportsRecursion' });
    const outcomes = await inRunspace((ctx) => {
      const l = ctx.using.lock;
      const attempt = (fn: () => unknown) => { try { fn(); return 'entered'; } catch (error) { return (error as Error).name; } };
      l.enterReadLock();
      const results = [attempt(() => l.enterReadLock()), attempt(() => l.enterWriteLock()), String(l.currentReadCount)];
      l.exitReadLock();
      l.exitReadLock();
      l.enterWriteLock();
      results.push(attempt(() => l.enterWriteLock()), attempt(() => l.enterReadLock()));
      l.exitWriteLock();
      l.exitWriteLock();
      // Left holding the read lock entered under the write lock.
      results.push(String(l.isReadLockHeld), String(l.currentReadCount));
      l.exitReadLock();
      results.push(String(l.currentReadCount));
      return results;
    }, lock);
    expect(outcomes).toEqual(['entered', InvalidOperationError.name, '1', 'entered', 'entered', 'true', '1', '0']);
  });

  test('the policy crosses with the lock, and a bad policy is refused', async () => {
    const lock = new ReaderWriterLock({ recursionPolicy: 'SupportsRecursion' });
    expect(await inRunspace((ctx) => ctx.using.lock.recursionPolicy, lock)).toBe('SupportsRecursion');
    expect(() => new ReaderWriterLock({ recursionPolicy: 'Sometimes' as never })).toThrow(InvalidArgumentError);
  });

  test('exits without the matching entry throw SynchronizationLockError (InvalidExits)', async () => {
    const lock = new ReaderWriterLock();
    const names = await inRunspace((ctx) => {
      const l = ctx.using.lock;
      const attempt = (fn: () => unknown) => { try { fn(); return 'exited'; } catch (error) { return (error as Error).name; } };
      const results = [attempt(() => l.exitUpgradeableReadLock()), attempt(() => l.exitWriteLock()), attempt(() => l.exitReadLock())];
      l.enterUpgradeableReadLock();
      l.enterWriteLock();
      results.push(attempt(() => l.exitUpgradeableReadLock()));
      l.exitWriteLock();
      l.exitUpgradeableReadLock();
      return results;
    }, lock);
    expect(names).toEqual(Array(4).fill(SynchronizationLockError.name));
  });
});

describe('ReaderWriterLock: upgradeable read', () => {
  test('one upgradeable reader at a time, sharing the lock with plain readers', async () => {
    const lock = new ReaderWriterLock();
    const gate = new Gate();
    const upgrader = pool.invoke((ctx: RunspaceContext<{ lock: ReaderWriterLock; gate: SharedArrayBuffer }>) => {
      ctx.using.lock.enterUpgradeableReadLock();
      const cells = new Int32Array(ctx.using.gate);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      Atomics.wait(cells, 0, 0);
      ctx.using.lock.exitUpgradeableReadLock();
    }, { using: { lock, gate: gate.buffer } });
    await gate.arrivals(1);
    // A plain reader gets in beside it; a second upgradeable reader does not.
    expect(await lock.acquireRead({ timeout: 1_000 })).toBe(true);
    lock.exitReadLock();
    expect(await inRunspace((ctx) => ctx.using.lock.tryEnterUpgradeableReadLock(20), lock)).toBe(false);
    gate.open();
    await upgrader;
    expect(await inRunspace((ctx) => {
      const took = ctx.using.lock.tryEnterUpgradeableReadLock(1_000);
      if (took) ctx.using.lock.exitUpgradeableReadLock();
      return took;
    }, lock)).toBe(true);
  });

  test('the upgradeable reader writes once the other readers leave, then reads on; nobody else was inside meanwhile', async () => {
    const lock = new ReaderWriterLock();
    await lock.acquireRead();
    const gate = new Gate();
    const upgrading = pool.invoke((ctx: RunspaceContext<{ lock: ReaderWriterLock; gate: SharedArrayBuffer }>) => {
      const l = ctx.using.lock;
      l.enterUpgradeableReadLock();
      const cells = new Int32Array(ctx.using.gate);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      const wrote = l.tryEnterWriteLock(10_000);
      const alone = l.currentReadCount === 0 && l.isWriteLockHeld;
      l.exitWriteLock();
      const readingAgain = l.isUpgradeableReadLockHeld && l.currentReadCount === 1;
      l.exitUpgradeableReadLock();
      return [wrote, alone, readingAgain];
    }, { using: { lock, gate: gate.buffer } });
    await gate.arrivals(1);
    // It reports arriving just before it asks to write: wait until it counts as a waiting writer.
    for (let look = 0; look < 5_000 && lock.waitingWriteCount === 0; look++) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(lock.waitingWriteCount).toBe(1);
    // While it waits to write, new readers wait too (writer preference).
    expect(await lock.acquireRead({ timeout: 20 })).toBe(false);
    lock.exitReadLock();
    expect(await upgrading).toEqual([true, true, true]);
    expect(lock.currentReadCount).toBe(0);
    expect(await lock.acquireWrite({ timeout: 0 })).toBe(true);
    lock.exitWriteLock();
  });

  test('an upgradeable reader whose runspace dies frees its place and its share', async () => {
    const lock = new ReaderWriterLock();
    await expect(inRunspace((ctx) => { ctx.using.lock.enterUpgradeableReadLock(); process.exit(5); }, lock))
      .rejects.toMatchObject({ code: 'ERR_RUNSPACE_BROKEN' });
    expect(lock.currentReadCount).toBe(0);
    expect(await lock.acquireWrite({ timeout: 0 })).toBe(true);
    lock.exitWriteLock();
    expect(await inRunspace((ctx) => {
      const took = ctx.using.lock.tryEnterUpgradeableReadLock(0);
      if (took) ctx.using.lock.exitUpgradeableReadLock();
      return took;
    }, lock)).toBe(true);
  });

  test('upgrades under contention: 3 runspaces × 300 read-check-upgrade-write rounds lose no update', async () => {
    const lock = new ReaderWriterLock();
    const shared = new Int32Array(new SharedArrayBuffer(4));
    const rounds = 300;
    await Promise.all([0, 1, 2].map(() => pool.invoke((ctx: RunspaceContext<{ lock: ReaderWriterLock; cells: SharedArrayBuffer }>, n: number) => {
      const l = ctx.using.lock;
      const cells = new Int32Array(ctx.using.cells);
      for (let i = 0; i < n; i++) {
        l.enterUpgradeableReadLock();
        const seen = cells[0]!;
        l.enterWriteLock();
        cells[0] = seen + 1;
        l.exitWriteLock();
        l.exitUpgradeableReadLock();
        l.enterReadLock();
        l.exitReadLock();
      }
    }, { args: [rounds], using: { lock, cells: shared.buffer } })));
    expect(shared[0]).toBe(3 * rounds);
    expect(lock.currentReadCount).toBe(0);
  });
});
