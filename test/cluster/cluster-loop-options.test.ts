// A local loop's options on a cluster loop, meaning the same, on a real
// redis-server: throttleLimit across every node, highWaterMark bounding what
// waits in Redis, useNewRunspace, and relative import() from the defining file.
import { expect, test } from 'vitest';
import { Redis } from 'ioredis';
import { ClusterPool, ClusterUnavailableError, InvalidArgumentError } from 'runspaces';
import { clusterFixture, describeWithRedis, inspectQueue, until } from './fixture.js';
import { REPO_ROOT } from './redis-server.js';

describeWithRedis('cluster loop options on a real redis-server', () => {
  const fixture = clusterFixture('options');
  const { freshQueue, cluster } = fixture;

  test('throttleLimit bounds the items running at once across all nodes, as a local loop bounds them across runspaces', async () => {
    const { pool, queue } = await cluster(3);
    const counters = new Redis(fixture.redis.url);
    try {
      const keys = { url: fixture.redis.url, running: `${queue}:running`, peak: `${queue}:peak` };
      // Each item counts itself in while it runs, recording the most seen at once, in Redis.
      const outputs = await pool.forEachParallel(Array.from({ length: 24 }, (_, i) => i), async (n: number, ctx) => {
        const { Redis: Client } = await import('ioredis');
        const { url, running, peak } = ctx.using as { url: string; running: string; peak: string };
        const client = new Client(url);
        try {
          await client.eval("local n = redis.call('INCR', KEYS[1]) if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end return n", 2, running, peak);
          await new Promise((resolve) => setTimeout(resolve, 30));
          await client.decr(running);
        } finally {
          client.disconnect();
        }
        return n;
      }, { using: keys, throttleLimit: 3, chunkSize: 2 });
      expect(outputs.sort((a, b) => a - b)).toEqual(Array.from({ length: 24 }, (_, i) => i));
      // 3 nodes of 2 runspaces could run 6 at once; the loop allows 3.
      const peak = Number(await counters.get(keys.peak));
      expect(peak).toBeLessThanOrEqual(3);
      expect(peak).toBeGreaterThanOrEqual(2);
    } finally {
      counters.disconnect();
      await pool.close();
    }
  });

  test('highWaterMark bounds what waits in Redis: with no node, a loop reads 40 items of a long input and queues 4 chunks, then a node finishes it', async () => {
    const queue = freshQueue();
    const pool = await ClusterPool.open({ redis: fixture.redis.url, queue, moduleRoot: REPO_ROOT });
    const watcher = inspectQueue(queue, fixture.redis);
    try {
      const source = new CountedInput(1_000);
      const all = pool.forEachParallel(source, (n: number) => n * 2, { chunkSize: 10, highWaterMark: 40, ordered: true }).toArray();
      await until(async () => (await watcher.getWaitingCount()) >= 4);
      // The loop submitted what its bound allows and now waits for results: nothing more is read.
      expect(source.pulled).toBe(40);
      expect(await watcher.getWaitingCount()).toBe(4);
      await fixture.startNode({ queue });
      expect(await all).toEqual(Array.from({ length: 1_000 }, (_, i) => i * 2));
    } finally {
      await watcher.close();
      await pool.close();
    }
  });

  test('an ordered loop holds at most highWaterMark items for order: a slow first item does not let the rest pile up', async () => {
    const { pool } = await cluster(1);
    try {
      const source = new CountedInput(1_000);
      const loop = pool.forEachParallel(source, async (n: number) => {
        if (n === 0) await new Promise((resolve) => setTimeout(resolve, 1_000));
        return n;
      }, { chunkSize: 1, highWaterMark: 8, ordered: true });
      let pulledAtFirst = -1;
      const outputs: number[] = [];
      for await (const output of loop) {
        if (pulledAtFirst < 0) pulledAtFirst = source.pulled;
        outputs.push(output);
      }
      expect(outputs).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
      // While item 0 ran, the loop read only what its bound allows (8 chunks of 1, and the one being cut).
      expect(pulledAtFirst).toBeLessThanOrEqual(9);
    } finally {
      await pool.close();
    }
  });

  test('useNewRunspace gives each item a runspace of its own on its node', async () => {
    const { pool } = await cluster(1);
    try {
      const counting = (n: number) => {
        const state = globalThis as { seen?: number };
        state.seen = (state.seen ?? 0) + 1;
        return state.seen;
      };
      expect(await pool.forEachParallel([1, 2, 3, 4, 5, 6], counting, { chunkSize: 6, useNewRunspace: true })).toEqual([1, 1, 1, 1, 1, 1]);
      expect(Math.max(...(await pool.forEachParallel([1, 2, 3, 4, 5, 6], counting, { chunkSize: 6 })))).toBeGreaterThan(1);
      expect(() => pool.forEachParallel([1], counting, { useNewRunspace: 'yes' as never })).toThrow(InvalidArgumentError);
    } finally {
      await pool.close();
    }
  });

  test("a script block's relative import() resolves on the node against its own file under the module root, or against baseUrl", async () => {
    const { pool } = await cluster(1);
    try {
      expect(await pool.invoke(async () => (await import('../fixtures/helper.js')).double(21))).toBe(42);
      expect(await pool.forEachParallel([1, 2], async (n: number) => (await import('../fixtures/helper.js')).double(n), { ordered: true })).toEqual([2, 4]);
      expect(await pool.invoke(async () => ((await import('./helper.js' as string)) as { double(n: number): number }).double(4), { baseUrl: new URL('../fixtures/', import.meta.url) })).toBe(8);
      const job = pool.startThreadJob(async () => (await import('../fixtures/helper.js')).double(5));
      await job.wait();
      expect(job.receive().output).toEqual([10]);
    } finally {
      await pool.close();
    }
  });

  test('closing the pool ends a loop over endless input with ClusterUnavailableError, instead of reading on to fail every item', async () => {
    const { pool } = await cluster(1);
    let pulled = 0;
    function* endless(): Generator<number> {
      for (;;) yield pulled++;
    }
    const loop = pool.forEachParallel(endless(), (n: number) => n, { chunkSize: 4, highWaterMark: 16, errorAction: 'continue' });
    const outputs: number[] = [];
    const ended = (async () => {
      for await (const output of loop) {
        outputs.push(output);
        if (outputs.length === 20) await pool.close();
      }
    })().catch((e: unknown) => e);
    const error = await ended;
    expect(error).toBeInstanceOf(ClusterUnavailableError);
    expect((error as Error).message).toMatch(/closed while the loop ran/);
    // What was read is the bound's worth beyond what was delivered, not the endless rest.
    expect(pulled).toBeLessThanOrEqual(outputs.length + 16 + 4);
  });
});

/** The numbers 0 to `count - 1`, counting how many the loop has read. */
class CountedInput implements Iterable<number> {
  pulled = 0;
  constructor(readonly count: number) {}
  *[Symbol.iterator](): Generator<number> {
    for (let i = 0; i < this.count; i++) {
      this.pulled++;
      yield i;
    }
  }
}
