// ClusterMutex and ClusterSemaphore across processes, on a real redis-server.
import { fork } from 'node:child_process';
import { expect, test } from 'vitest';
import { Redis } from 'ioredis';
import { ClusterMutex, ClusterSemaphore, ClusterUnavailableError, ObjectDisposedError, OperationCancelledError, SemaphoreFullError, SynchronizationLockError, TimeoutError } from 'runspaces';
import { clusterFixture, describeWithRedis } from './fixture.js';

const CHILD = new URL('../fixtures/cluster-mutex-child.js', import.meta.url);

interface Report {
  readonly event: 'started' | 'done' | 'holding';
  readonly tokens?: number[];
  readonly abandoned?: number;
  readonly increments?: number;
}

describeWithRedis('ClusterMutex on a real redis-server', () => {
  const fixture = clusterFixture('locks');

  test('4 processes × 1,000 increments, one holder SIGKILLed: no lost update, one abandonment reported, fencing tokens only increase', { timeout: 60_000 }, async () => {
    const name = 'counter-lock';
    const run = (increments: number, holdAfter: number) => {
      const child = fork(CHILD, [fixture.redis.url, name, String(increments), String(holdAfter)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const reports: Report[] = [];
      const reported = (event: Report['event']) => new Promise<void>((resolve) => child.on('message', (report: Report) => {
        if (report.event === event) resolve();
      }));
      child.on('message', (report: Report) => reports.push(report));
      const started = reported('started');
      const holding = reported('holding');
      const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
      return { child, reports, started, holding, exited, go: () => child.send('go') };
    };
    // The doomed process increments, then holds the lock; the others start then, contend for the
    // lock it holds, and it is killed while they wait: whoever takes the lock first after its lease
    // must be told it was abandoned. (Started all at once, the others could finish before it held.)
    const doomed = run(1_000, 100);
    const others = [run(1_000, -1), run(1_000, -1), run(1_000, -1)];
    doomed.go();
    await doomed.holding;
    for (const other of others) other.go();
    await Promise.all(others.map((other) => other.started));
    doomed.child.kill('SIGKILL');
    expect(await doomed.exited).toBe('SIGKILL');
    expect(await Promise.all(others.map((other) => other.exited))).toEqual([0, 0, 0]);
    const done = others.map((other) => other.reports.find((report) => report.event === 'done')!);

    const client = new Redis(fixture.redis.url);
    try {
      // The doomed process did 100 increments before it died holding the lock; the others all of theirs.
      expect(Number(await client.get(`${name}:counter`))).toBe(100 + 3 * 1_000);
    } finally {
      client.disconnect();
    }
    expect(done.reduce((sum, report) => sum + report.abandoned!, 0)).toBe(1);
    const all = done.flatMap((report) => report.tokens!);
    for (const report of done) expect(report.tokens).toEqual([...report.tokens!].sort((a, b) => a - b));
    expect(new Set(all).size).toBe(all.length);
    // Every token a survivor got is larger than the dead holder's last one (101: its 101st acquisition at most).
    expect(Math.max(...all)).toBe(3_000 + 101);
  });

  test('a second holder waits; a timeout is false (withLock: TimeoutError); release by a non-holder throws; open without Redis is ClusterUnavailableError', async () => {
    const first = await ClusterMutex.open('waits', { redis: fixture.redis.url });
    const second = await ClusterMutex.open('waits', { redis: fixture.redis.url });
    try {
      expect(await first.acquire()).toBe(true);
      expect(first.fencingToken).toBe(1);
      expect(await second.acquire({ timeout: 50 })).toBe(false);
      await expect(second.withLock(() => 'never', { timeout: 50 })).rejects.toBeInstanceOf(TimeoutError);
      await expect(second.releaseMutex()).rejects.toBeInstanceOf(SynchronizationLockError);
      const waiting = second.withLock(({ fencingToken, abandoned }) => [fencingToken, abandoned]);
      await first.releaseMutex();
      expect(await waiting).toEqual([2, false]);
      expect(first.fencingToken).toBe(0);
    } finally {
      await first.dispose();
      await second.dispose();
    }
    await expect(ClusterMutex.open('nowhere', { redis: 'redis://127.0.0.1:1' })).rejects.toBeInstanceOf(ClusterUnavailableError);
  });

  test('ClusterSemaphore: never more holders than permits (4 holders × 100 turns, 2 permits), and a holder that dies gives its permit back after its lease', { timeout: 30_000 }, async () => {
    const name = 'two-permits';
    const holders = await Promise.all([0, 1, 2, 3].map(() => ClusterSemaphore.open(name, { redis: fixture.redis.url, maximumCount: 2 })));
    const counter = new Redis(fixture.redis.url);
    let most = 0;
    try {
      await Promise.all(holders.map(async (holder) => {
        for (let turn = 0; turn < 100; turn++) {
          await holder.withLock(async () => {
            const inside = await counter.incr(`${name}:inside`);
            most = Math.max(most, inside);
            await counter.decr(`${name}:inside`);
          });
        }
      }));
      expect(most).toBe(2);
      expect(await holders[0]!.freeCount()).toBe(2);
      await expect(holders[0]!.release()).rejects.toBeInstanceOf(SemaphoreFullError);

      const child = fork(new URL('../fixtures/cluster-semaphore-child.js', import.meta.url), [fixture.redis.url, name, '2'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      await new Promise<void>((resolve) => child.on('message', () => resolve()));
      expect(await holders[0]!.acquire()).toBe(true);
      // Both permits held: one here, one by the child.
      expect(await holders[1]!.acquire({ timeout: 50 })).toBe(false);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      // Its lease (500 ms) runs out and the permit comes back.
      expect(await holders[1]!.acquire({ timeout: 5_000 })).toBe(true);
    } finally {
      counter.disconnect();
      for (const holder of holders) await holder.dispose();
    }
  });

  test("async-mutex's conveniences on the cluster locks: isLocked, waitForUnlock, cancel; dispose stops pending waits", async () => {
    const first = await ClusterMutex.open('conveniences', { redis: fixture.redis.url });
    const second = await ClusterMutex.open('conveniences', { redis: fixture.redis.url });
    const permits = await Promise.all([0, 1].map(() => ClusterSemaphore.open('one-permit', { redis: fixture.redis.url, maximumCount: 1 })));
    try {
      expect(await second.isLocked()).toBe(false);
      await first.acquire();
      expect(await second.isLocked()).toBe(true);
      expect(await second.waitForUnlock({ timeout: 50 })).toBe(false);
      const cancelled = [second.acquire().catch((e: unknown) => e), second.waitForUnlock().catch((e: unknown) => e)];
      second.cancel();
      expect(await Promise.all(cancelled)).toEqual([expect.any(OperationCancelledError), expect.any(OperationCancelledError)]);
      expect(second.fencingToken).toBe(0);
      // A wait after cancel() is unaffected by it.
      const freed = second.waitForUnlock();
      await first.releaseMutex();
      expect(await freed).toBe(true);
      expect(await second.acquire({ timeout: 5_000 })).toBe(true);
      await second.releaseMutex();

      await permits[0]!.acquire();
      expect(await permits[1]!.isLocked()).toBe(true);
      const pending = permits[1]!.acquire().catch((e: unknown) => e);
      permits[1]!.cancel();
      expect(await pending).toBeInstanceOf(OperationCancelledError);
      expect(permits[1]!.heldCount).toBe(0);
      const unlocked = permits[1]!.waitForUnlock();
      await permits[0]!.release();
      expect(await unlocked).toBe(true);

      await first.acquire();
      const abandonedWait = second.acquire().catch((e: unknown) => e);
      await second.dispose();
      expect(await abandonedWait).toBeInstanceOf(OperationCancelledError);
      await expect(second.acquire()).rejects.toBeInstanceOf(ObjectDisposedError);
    } finally {
      await first.dispose();
      await second.dispose();
      for (const permit of permits) await permit.dispose();
    }
  });
});

