import { once } from 'node:events';
import { describe, expect, test } from 'vitest';
import { RunspacePool, type JobContext, type StreamRecord } from 'runspaces';
import { Gate } from '../helpers.js';

/** Writes two outputs, reports its arrival, blocks until the gate opens, then returns. */
const streaming = (ctx: JobContext<{ gate: SharedArrayBuffer }>): string => {
  ctx.writeOutput(1);
  ctx.writeOutput({ step: 2 });
  const cells = new Int32Array(ctx.using.gate);
  Atomics.add(cells, 1, 1);
  Atomics.notify(cells, 1);
  Atomics.wait(cells, 0, 0);
  return 'done';
};

/** Resolves once `job.receive` would return `count` outputs in all. */
async function outputsArrived(job: { on(event: 'data', fn: () => void): unknown; off(event: 'data', fn: () => void): unknown; receive(o: { keep: boolean }): { output: unknown[] } }, count: number): Promise<void> {
  if (job.receive({ keep: true }).output.length >= count) return;
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if (job.receive({ keep: true }).output.length < count) return;
      job.off('data', check);
      resolve();
    };
    job.on('data', check);
  });
}

describe('streaming output: ctx.writeOutput (Write-Output, Receive-Job)', () => {
  test('a running job\'s written output is received before it ends; the return value follows', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const gate = new Gate();
    const job = pool.startThreadJob(streaming, { using: { gate: gate.buffer } });
    await outputsArrived(job, 2);
    expect(job.state).toBe('Running');
    expect(job.receive().output).toEqual([1, { step: 2 }]);
    gate.open();
    await job.wait();
    expect(job.receive().output).toEqual(['done']);
  });

  test('a stopped job keeps what it wrote; a job that returns nothing outputs only what it wrote', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1, cancelGracePeriod: 0 });
    const gate = new Gate();
    const job = pool.startThreadJob(streaming, { using: { gate: gate.buffer } });
    await outputsArrived(job, 2);
    await job.stop();
    expect(job.state).toBe('Stopped');
    expect(job.receive().output).toEqual([1, { step: 2 }]);

    const quiet = pool.startThreadJob((ctx) => {
      ctx.writeOutput('a');
      ctx.writeOutput('b');
    });
    await quiet.wait();
    expect(quiet.receive().output).toEqual(['a', 'b']);
  });

  test('in invoke, written output arrives as records in order and the call resolves with its return value', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const records: StreamRecord[] = [];
    const value = await pool.invoke((ctx) => {
      ctx.writeOutput('first');
      ctx.writeOutput('second');
      return 'returned';
    }, { onRecord: (record) => records.push(record) });
    expect(value).toBe('returned');
    expect(records.map((r) => (r.stream === 'output' ? r.data : r.stream))).toEqual(['first', 'second']);
    // Without onRecord, the pool's record event carries them.
    const seen = once(pool, 'record');
    await pool.invoke((ctx) => ctx.writeOutput(42));
    expect((await seen)[0]).toMatchObject({ stream: 'output', data: 42 });
  });
});
