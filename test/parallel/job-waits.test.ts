import { describe, expect, test } from 'vitest';
import { InvalidArgumentError, RunspacePool, ThreadJob } from 'runspaces';
import { blockOnGateThenReturn as gated, Gate } from '../helpers.js';

describe('waiting for several jobs (Wait-Job, Wait-Job -Any)', () => {
  test('waitAny gives the first job to finish while the others still run; waitAll waits for the last', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 3, maxRunspaces: 3 });
    const gates = [new Gate(), new Gate(), new Gate()];
    const jobs = gates.map((gate, i) => pool.startThreadJob(gated, { args: [`job ${i}`], using: { gate: gate.buffer } }));
    await Promise.all(gates.map((gate) => gate.arrivals(1)));

    gates[1]!.open();
    const first = await ThreadJob.waitAny(jobs);
    expect(first).toBe(jobs[1]);
    expect(first!.receive().output).toEqual(['job 1']);
    expect([jobs[0]!.state, jobs[2]!.state]).toEqual(['Running', 'Running']);
    // Already finished: returned at once, even among running ones.
    expect(await ThreadJob.waitAny(jobs)).toBe(jobs[1]);

    expect(await ThreadJob.waitAll(jobs, { timeout: 20 })).toBe(false);
    gates[0]!.open();
    gates[2]!.open();
    expect(await ThreadJob.waitAll(jobs)).toBe(true);
    expect(jobs.map((job) => job.state)).toEqual(['Completed', 'Completed', 'Completed']);
  });

  test('a timeout gives undefined (waitAny) or false (waitAll); an abort rejects with its reason', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const gate = new Gate();
    const job = pool.startThreadJob(gated, { args: ['late'], using: { gate: gate.buffer } });
    await gate.arrivals(1);
    expect(await ThreadJob.waitAny([job], { timeout: 20 })).toBeUndefined();
    expect(await ThreadJob.waitAll([job], { timeout: 0 })).toBe(false);
    const controller = new AbortController();
    const waiting = ThreadJob.waitAny([job], { signal: controller.signal });
    controller.abort(new Error('no longer needed'));
    await expect(waiting).rejects.toThrow('no longer needed');
    gate.open();
    expect(await ThreadJob.waitAny([job])).toBe(job);
  });

  test('bad input is a typed error; no jobs at all is nothing to wait for', async () => {
    await expect(ThreadJob.waitAny([])).rejects.toThrow(InvalidArgumentError);
    await expect(ThreadJob.waitAll([{ state: 'Completed' } as unknown as ThreadJob])).rejects.toThrow(/jobs\[0\] is not a job/);
    await expect(ThreadJob.waitAll('jobs' as unknown as ThreadJob[])).rejects.toThrow(InvalidArgumentError);
    await expect(ThreadJob.waitAll([], { timeout: -1 })).rejects.toThrow(InvalidArgumentError);
    expect(await ThreadJob.waitAll([])).toBe(true);
  });
});
