// A cluster pool over several Redis instances (shards), each with nodes of
// its own, on real redis-servers: work spreads over them, and a shard whose
// Redis is down takes no new work while the others carry on.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ClusterPool, ClusterUnavailableError, InvalidArgumentError, startWorkerNode } from 'runspaces';
import { clusterFixture, describeWithRedis, until } from './fixture.js';
import { REPO_ROOT, startRedis, type RedisServer } from './redis-server.js';

describeWithRedis('cluster shards on real redis-servers', () => {
  const fixture = clusterFixture('shards');
  let second: RedisServer;

  beforeAll(async () => {
    second = await startRedis();
  });

  afterAll(async () => {
    await second?.stop();
  });

  test('a loop spreads over two shards, and when one Redis goes down new work goes to the other', async () => {
    const queue = fixture.freshQueue();
    const first = fixture.redis;
    const [onFirst, onSecond] = await Promise.all([fixture.startNode({ queue }), fixture.startNode({ queue }, second)]);
    const pool = await ClusterPool.open({ redis: [first.url, second.url], queue, moduleRoot: REPO_ROOT, unavailableAfter: 1_000 });
    try {
      expect(pool.shards).toEqual([{ redis: first.url, ready: true, waiting: 0 }, { redis: second.url, ready: true, waiting: 0 }]);
      const slow = async (n: number) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return [n, process.pid];
      };
      const spread = await pool.forEachParallel(Array.from({ length: 40 }, (_, i) => i), slow, { chunkSize: 2, ordered: true });
      expect(spread.map(([n]) => n)).toEqual(Array.from({ length: 40 }, (_, i) => i));
      expect(new Set(spread.map(([, pid]) => pid))).toEqual(new Set([onFirst.pid, onSecond.pid]));

      await second.stop();
      await until(() => !pool.shards[1]!.ready);
      const after = await pool.forEachParallel(Array.from({ length: 20 }, (_, i) => i), slow, { chunkSize: 2, ordered: true });
      expect(after.map(([n]) => n)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(new Set(after.map(([, pid]) => pid))).toEqual(new Set([onFirst.pid]));
      expect(await pool.invoke((ctx, n: number) => n * 2, { args: [21] })).toBe(42);
    } finally {
      await pool.close();
    }
  });

  test('opening fails with ClusterUnavailableError naming a shard that cannot be reached; bad options are refused with InvalidArgumentError before connecting', async () => {
    const first = fixture.redis;
    const error = await ClusterPool.open({ redis: [first.url, 'redis://127.0.0.1:1'], unavailableAfter: 500 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClusterUnavailableError);
    expect((error as Error).message).toContain('redis://127.0.0.1:1');
    await expect(ClusterPool.open({ redis: [] })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(ClusterPool.open({ redis: [first.url, first.url] })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(ClusterPool.open({ redis: [first.url, 42 as never] })).rejects.toBeInstanceOf(InvalidArgumentError);
    // Options BullMQ or Node would refuse with an untyped error are refused first, naming the option.
    for (const bad of [{ queue: 'a:b' }, { queue: '' }, { queue: 42 }, { moduleRoot: 42 }, { unavailableAfter: -1 }]) {
      const refused = await ClusterPool.open({ redis: first.url, ...(bad as object) }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(InvalidArgumentError);
      expect((refused as InvalidArgumentError).message).toContain(Object.keys(bad)[0]);
    }
    for (const bad of [{ queue: 'a:b' }, { maxRunspaces: 0 }, { leaseMs: 10 }, { moduleRoot: {} }, { redis: 7 }]) {
      await expect(startWorkerNode({ redis: first.url, ...(bad as object) })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
  });
});
