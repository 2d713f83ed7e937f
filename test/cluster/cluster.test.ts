// Loops and calls across worker node processes, on a real redis-server.
import { expect, test } from 'vitest';
import type { Queue } from 'bullmq';
import {
  ClusterPool,
  ClusterUnavailableError,
  ClusterValueError,
  ModuleExportError,
  Mutex,
  OperationCancelledError,
  ParallelLoopError,
  TimeoutError,
  type RunspaceContext,
  type StreamRecord,
} from 'runspaces';
import { clusterFixture, describeWithRedis, inspectQueue } from './fixture.js';
import { REPO_ROOT, startRedis } from './redis-server.js';

describeWithRedis('cluster on a real redis-server', () => {
  const fixture = clusterFixture('test');
  const { freshQueue, cluster } = fixture;

  test('invoke runs a script block on a node and brings back its result, or its error with class and code', async () => {
    const { pool } = await cluster(1);
    try {
      expect(await pool.invoke((ctx: RunspaceContext<{ base: number }>, a: number, b: number) => ctx.using.base + a * b, { args: [6, 7], using: { base: 100 } })).toBe(142);
      expect(await pool.invoke((ctx, m: Map<string, number>) => [...m.keys()], { args: [new Map([['a', 1], ['b', 2]])] })).toEqual(['a', 'b']);
      const error = await pool.invoke(() => {
        throw Object.assign(new RangeError('too far'), { code: 'E_FAR' });
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RangeError);
      expect(error).toMatchObject({ message: 'too far', code: 'E_FAR' });
    } finally {
      await pool.close();
    }
  });

  test('a loop over two node processes gives every item exactly once, in input order, and both nodes work', async () => {
    const { pool } = await cluster(2);
    try {
      const input = Array.from({ length: 400 }, (_, i) => i);
      const outputs = await pool.forEachParallel(input, async (n: number) => {
        await new Promise((resolve) => setTimeout(resolve, 2));
        return [n * 3, process.pid];
      }, { ordered: true, chunkSize: 10, throttleLimit: 8 });
      expect(outputs.map(([value]) => value)).toEqual(input.map((n) => n * 3));
      expect(new Set(outputs.map(([, pid]) => pid)).size).toBe(2);
    } finally {
      await pool.close();
    }
  });

  test('a node killed with SIGKILL mid-loop loses no item: its chunks run again on the other node after the lease', async () => {
    const { pool, started } = await cluster(2, { lease: '1s' });
    try {
      const input = Array.from({ length: 80 }, (_, i) => i);
      const loop = pool.forEachParallel(input, async (n: number) => {
        await new Promise((resolve) => setTimeout(resolve, 25));
        return [n, process.pid];
      }, { ordered: true, chunkSize: 2, throttleLimit: 8 });
      const outputs: [number, number][] = [];
      let killed = false;
      for await (const output of loop) {
        outputs.push(output as [number, number]);
        if (!killed && outputs.length === 6) {
          killed = true;
          started[0]!.process.kill('SIGKILL');
        }
      }
      expect(outputs.map(([n]) => n)).toEqual(input);
      expect(loop.errors).toEqual([]);
      expect(await started[0]!.exited).toBe('SIGKILL');
    } finally {
      await pool.close();
    }
  });

  test('the delivery rule: a chunk whose node dies is run once more; lost a second time, its items fail with ClusterNodeLostError, the others arrive', { timeout: 30_000 }, async () => {
    const { pool, started } = await cluster(3, { lease: '1s' });
    try {
      // Item 1 takes down whichever node runs it (the whole process, not just its runspace).
      const loop = pool.forEachParallel([0, 1, 2], (n: number) => {
        if (n === 1) process.kill(process.pid, 'SIGKILL');
        return n;
      }, { chunkSize: 1, ordered: true, errorAction: 'continue' });
      expect(await loop).toEqual([0, 2]);
      expect(loop.errors.map((error) => [error.index, (error.cause as Error).name])).toEqual([[1, 'ClusterNodeLostError']]);
      const exits = await Promise.all(started.map((node) => Promise.race([node.exited, new Promise((resolve) => setTimeout(() => resolve('running'), 100))])));
      expect(exits.filter((exit) => exit === 'SIGKILL')).toHaveLength(2);
    } finally {
      await pool.close();
    }
  });

  test('nodes leave and join while a loop runs: SIGTERM finishes the chunk a node holds and exits 0; a node started later takes the rest', async () => {
    const queue = freshQueue();
    const first = await fixture.startNode({ queue, maxRunspaces: 1 });
    const pool = await ClusterPool.open({ redis: fixture.redis.url, queue, moduleRoot: REPO_ROOT });
    try {
      const input = Array.from({ length: 12 }, (_, i) => i);
      const loop = pool.forEachParallel(input, async (n: number) => {
        await new Promise((resolve) => setTimeout(resolve, 40));
        return [n, process.pid];
      }, { ordered: true, chunkSize: 2, throttleLimit: 6 });
      const outputs: [number, number][] = [];
      for await (const output of loop) {
        outputs.push(output as [number, number]);
        if (outputs.length === 2) {
          first.process.kill('SIGTERM');
          // It leaves cleanly: what it held is finished and delivered, nothing is taken after.
          expect(await first.exited).toBe(0);
          await fixture.startNode({ queue, maxRunspaces: 1 });
        }
      }
      expect(outputs.map(([n]) => n)).toEqual(input);
      expect(new Set(outputs.map(([, pid]) => pid)).size).toBe(2);
      expect(loop.errors).toEqual([]);
    } finally {
      await pool.close();
    }
  });

  test('stream records written on the nodes reach onRecord and onProgress, tagged with their item', async () => {
    const { pool } = await cluster(1);
    try {
      const records: StreamRecord[] = [];
      const progress: number[] = [];
      const outputs = await pool.forEachParallel([10, 20, 30], (n: number, ctx) => {
        ctx.writeVerbose(`item ${n}`);
        ctx.writeProgress({ activity: 'counting', percentComplete: n });
        return n;
      }, { chunkSize: 2, ordered: true, onRecord: (record) => records.push(record), onProgress: (record) => progress.push(record.progress.percentComplete!) });
      expect(outputs).toEqual([10, 20, 30]);
      expect(records.filter((r) => r.stream === 'verbose').map((r) => [r.index, (r as { message: string }).message])).toEqual([[0, 'item 10'], [1, 'item 20'], [2, 'item 30']]);
      expect(progress).toEqual([10, 20, 30]);
      const warnings: StreamRecord[] = [];
      expect(await pool.invoke((ctx) => {
        ctx.writeWarning('careful');
        return 'done';
      }, { onRecord: (record) => warnings.push(record) })).toBe('done');
      expect(warnings).toMatchObject([{ stream: 'warning', message: 'careful' }]);
    } finally {
      await pool.close();
    }
  });

  test('a thread job on the cluster: NotStarted while queued, Running once a node takes it, then Completed with its output; stop() stops one', async () => {
    const queue = freshQueue();
    const pool = await ClusterPool.open({ redis: fixture.redis.url, queue, moduleRoot: REPO_ROOT });
    try {
      const job = pool.startThreadJob((ctx, n: number) => {
        ctx.writeOutput('first');
        return n * 2;
      }, { args: [21], name: 'double' });
      const states: string[] = [job.state];
      job.on('stateChanged', ({ state }) => states.push(state));
      // No node yet: it stays queued.
      expect(await job.wait({ timeout: 100 })).toBe(false);
      expect(job.state).toBe('NotStarted');
      await fixture.startNode({ queue });
      expect(await job.wait({ timeout: 10_000 })).toBe(true);
      expect(states).toEqual(['NotStarted', 'Running', 'Completed']);
      expect(job.receive().output).toEqual(['first', 42]);
      expect(job.command).toContain('n * 2');
      expect(pool.getJobs()).toEqual([job]);

      const endless = pool.startThreadJob((ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped')))));
      await new Promise<void>((resolve) => endless.on('stateChanged', ({ state }) => state === 'Running' && resolve()));
      await endless.stop();
      expect(endless.state).toBe('Stopped');
    } finally {
      await pool.close();
    }
  });

  test('a timeout reaches the items running on the nodes: they stop, and nothing stays active in the queue', async () => {
    const { pool, queue } = await cluster(1);
    const watcher = inspectQueue(queue, fixture.redis);
    try {
      const started = performance.now();
      const error = await pool.forEachParallel(Array.from({ length: 8 }, (_, i) => i), (n: number, ctx) => new Promise((_, reject) => {
        (ctx as RunspaceContext).signal.addEventListener('abort', () => reject(new Error(`item ${n} stopped`)));
      }), { chunkSize: 1, throttleLimit: 4, timeout: 300 }).toArray().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TimeoutError);
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(await activeAfterCancel(watcher)).toBe(0);
      expect(await watcher.getWaitingCount()).toBe(0);
    } finally {
      await watcher.close();
      await pool.close();
    }
  });

  test('an abort reaches the items running on the nodes too: the loop ends with OperationCancelledError and the queue empties', async () => {
    const { pool, queue } = await cluster(1);
    const watcher = inspectQueue(queue, fixture.redis);
    try {
      const controller = new AbortController();
      const loop = pool.forEachParallel([0, 1, 2, 3, 4, 5], (n: number, ctx) => n === 0 ? n : new Promise((_, reject) => {
        (ctx as RunspaceContext).signal.addEventListener('abort', () => reject(new Error(`item ${n} stopped`)));
      }), { chunkSize: 1, throttleLimit: 4, signal: controller.signal });
      const seen: unknown[] = [];
      const error = await (async () => {
        for await (const output of loop) {
          seen.push(output);
          controller.abort(new Error('enough'));
        }
      })().catch((e: unknown) => e);
      expect(seen).toEqual([0]);
      expect(error).toBeInstanceOf(OperationCancelledError);
      expect(await activeAfterCancel(watcher)).toBe(0);
      expect(await watcher.getWaitingCount()).toBe(0);
    } finally {
      await watcher.close();
      await pool.close();
    }
  });

  test('module functions resolve under the module root on the node; a missing export fails its items with ModuleExportError', async () => {
    const { pool } = await cluster(1);
    try {
      const digest = { module: new URL('../fixtures/tasks.js', import.meta.url), export: 'digest' };
      expect(await pool.invoke(digest, { args: ['abc'] })).toBe(await pool.invoke(digest, { args: ['abc'] }));
      const missing = await pool.forEachParallel([1, 2], { module: new URL('../fixtures/tasks.js', import.meta.url), export: 'nothingHere' }).toArray().catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(ParallelLoopError);
      expect((missing as ParallelLoopError).errors.map((e) => e.cause)).toEqual([expect.any(ModuleExportError), expect.any(ModuleExportError)]);
    } finally {
      await pool.close();
    }
  });

  test('values that cannot mean the same on another machine are refused with ClusterValueError, naming where', async () => {
    const { pool } = await cluster(1);
    try {
      await expect(pool.invoke((ctx) => 1, { using: { lock: new Mutex() } })).rejects.toThrow(ClusterValueError);
      await expect(pool.invoke((ctx) => 1, { using: { lock: new Mutex() } })).rejects.toThrow(/using\.lock/);
      expect(() => pool.forEachParallel([1], (n: number) => n, { using: { f: () => 1 } as never })).toThrow(ClusterValueError);
      const loop = pool.forEachParallel([1, { nested: [new Mutex()] }], (n: unknown) => n);
      await expect(loop.toArray()).rejects.toThrow(/input\[1\]\.nested\[0\]/);
    } finally {
      await pool.close();
    }
  });

  test('Redis unreachable: open fails with ClusterUnavailableError, and a waiting call fails within unavailableAfter', async () => {
    await expect(ClusterPool.open({ redis: 'redis://127.0.0.1:1', unavailableAfter: 500 })).rejects.toBeInstanceOf(ClusterUnavailableError);
    const own = await startRedis();
    const queue = freshQueue();
    const pool = await ClusterPool.open({ redis: own.url, queue, unavailableAfter: 500 });
    try {
      // No node takes the job; Redis then goes away.
      const waiting = pool.invoke((ctx) => 1).catch((e: unknown) => e);
      await own.stop();
      const error = await waiting;
      expect(error).toBeInstanceOf(ClusterUnavailableError);
    } finally {
      await pool.close();
    }
  });
});

/** Jobs still active in the queue once the nodes had up to 5 s to stop what was cancelled. */
async function activeAfterCancel(watcher: Queue): Promise<number> {
  let active = await watcher.getActiveCount();
  for (let look = 0; look < 100 && active !== 0; look++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    active = await watcher.getActiveCount();
  }
  return active;
}
