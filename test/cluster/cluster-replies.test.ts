// How results, records and lost jobs reach the caller of a cluster, on a real
// redis-server: each caller reads only its own replies, records arrive while
// their items run, and a job that disappears from Redis fails its call.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { ClusterPool, ClusterUnavailableError, OperationCancelledError, type RunspaceContext, type StreamRecord } from 'runspaces';
import { clusterFixture, describeWithRedis, inspectQueue, until } from './fixture.js';
import { REPO_ROOT, startRedis } from './redis-server.js';

const FLOOD = fileURLToPath(new URL('../fixtures/cluster-flood.js', import.meta.url));

describeWithRedis('cluster replies on a real redis-server', () => {
  const fixture = clusterFixture('replies');
  const { freshQueue, cluster } = fixture;

  test('a record reaches onProgress, onRecord and the job while its item still runs, not only with the result', async () => {
    const { pool } = await cluster(1);
    try {
      // Each item ends only when the caller, having seen its record, aborts it.
      const controller = new AbortController();
      const seen: number[] = [];
      const loopError = await pool.forEachParallel([7], (n: number, ctx) => {
        ctx.writeProgress({ activity: 'waiting', percentComplete: n });
        return new Promise((_, reject) => (ctx as RunspaceContext).signal.addEventListener('abort', () => reject(new Error('stopped'))));
      }, { signal: controller.signal, timeout: 10_000, onProgress: (record) => {
        seen.push(record.progress.percentComplete!);
        controller.abort(new Error('seen'));
      } }).toArray().catch((e: unknown) => e);
      expect(seen).toEqual([7]);
      expect(loopError).toBeInstanceOf(OperationCancelledError);

      const call = new AbortController();
      const records: StreamRecord[] = [];
      const callError = await pool.invoke((ctx) => {
        ctx.writeWarning('half way');
        return new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped'))));
      }, { signal: call.signal, timeout: 10_000, onRecord: (record) => {
        records.push(record);
        call.abort(new Error('seen'));
      } }).catch((e: unknown) => e);
      expect(records).toMatchObject([{ stream: 'warning', message: 'half way' }]);
      expect(callError).toBeInstanceOf(OperationCancelledError);

      const job = pool.startThreadJob((ctx) => {
        ctx.writeOutput('early');
        return new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped'))));
      });
      await new Promise<void>((resolve) => job.on('data', () => resolve()));
      expect(job.state).toBe('Running');
      expect(job.receive().output).toEqual(['early']);
      await job.stop();
    } finally {
      await pool.close();
    }
  });

  test("a caller gets its result after its event loop was blocked while another caller's jobs went through the queue", { timeout: 60_000 }, async () => {
    const { queue, pool } = await cluster(1);
    const watcher = inspectQueue(queue, fixture.redis);
    try {
      const result = pool.invoke(async () => {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        return 'mine';
      }, { timeout: 30_000 });
      await until(async () => (await watcher.getActiveCount()) > 0);
      // Blocks this process while another caller puts 6,000 jobs through the same queue, this
      // call completing among them: far more events than the queue's event stream keeps (10,000).
      execFileSync(process.execPath, [FLOOD, fixture.redis.url, queue, '6000'], { stdio: 'inherit' });
      expect(await result).toBe('mine');
    } finally {
      await watcher.close();
      await pool.close();
    }
  });

  test('a queued call whose job is removed from the queue by someone else fails with ClusterUnavailableError instead of waiting forever', async () => {
    const queue = freshQueue();
    const pool = await ClusterPool.open({ redis: fixture.redis.url, queue, moduleRoot: REPO_ROOT });
    const admin = inspectQueue(queue, fixture.redis);
    try {
      // No node: the job waits in the queue until an operator empties it.
      const waiting = pool.invoke(() => 1, { timeout: 20_000 }).catch((e: unknown) => e);
      await until(async () => (await admin.getWaitingCount()) > 0);
      await admin.obliterate({ force: true });
      const error = await waiting;
      expect(error).toBeInstanceOf(ClusterUnavailableError);
      expect((error as Error).message).toMatch(/no longer in Redis/);
    } finally {
      await admin.close();
      await pool.close();
    }
  });

  test('Redis restarting without its data mid-call: the call fails with ClusterUnavailableError, and the pool goes on after', async () => {
    const own = await startRedis();
    try {
      const { pool, queue } = await cluster(1, { server: own });
      try {
        const running = pool.invoke((ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped')))), { timeout: 20_000 }).catch((e: unknown) => e);
        // The call is running on the node before Redis goes.
        const admin = inspectQueue(queue, own);
        await until(async () => (await admin.getActiveCount()) > 0);
        await admin.close();
        await own.restart();
        const error = await running;
        expect(error).toBeInstanceOf(ClusterUnavailableError);
        expect((error as Error).message).toMatch(/no longer in Redis/);
        expect(await pool.invoke((ctx, n: number) => n + 1, { args: [1], timeout: 20_000 })).toBe(2);
      } finally {
        await pool.close();
      }
    } finally {
      await own.stop();
    }
  });
});
