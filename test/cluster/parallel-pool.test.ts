// One function written against ParallelPool runs on a local RunspacePool and
// on a ClusterPool (a real redis-server and a node process) with the same
// results: code moves between one machine and many by how the pool is opened.
import { expect, test } from 'vitest';
import { RunspacePool, type ParallelPool } from 'runspaces';
import { clusterFixture, describeWithRedis } from './fixture.js';

/** Written once, for either kind of pool. */
async function portable(pool: ParallelPool): Promise<unknown> {
  const loop = pool.forEachParallel([1, 2, 3, 4], (n: number, ctx) => n * n + ctx.using.add, { ordered: true, throttleLimit: 2, using: { add: 1 } });
  const squares = await loop;
  const sum = await pool.invoke((ctx, a: number, b: number) => a + b, { args: [2, 3] });
  const job = pool.startThreadJob((ctx, n: number) => n * 2, { args: [21], name: 'double' });
  await job.wait();
  const streams: string[] = [];
  await pool.invoke((ctx) => ctx.writeWarning('careful'), { onRecord: (record) => streams.push(record.stream) });
  const failed = await pool.forEachParallel([1, 0], (n: number) => {
    if (n === 0) throw new RangeError('zero');
    return n;
  }, { errorAction: 'continue' });
  return { squares, completed: loop.completed, sum, job: [job.name, job.state, job.receive().output], streams, failed };
}

const expected = { squares: [2, 5, 10, 17], completed: 4, sum: 5, job: ['double', 'Completed', [42]], streams: ['warning'], failed: [1] };

test('a function written against ParallelPool runs on a local RunspacePool', async () => {
  const pool = await RunspacePool.open({ maxRunspaces: 2 });
  try {
    expect(await portable(pool)).toEqual(expected);
  } finally {
    await pool.close();
  }
});

describeWithRedis('the same function on a ClusterPool', () => {
  const { cluster } = clusterFixture('portable');

  test('gives the same results on a ClusterPool', async () => {
    const { pool } = await cluster(1);
    try {
      expect(await portable(pool)).toEqual(expected);
    } finally {
      await pool.close();
    }
  });
});
