import { describe, expect, test } from 'vitest';
import {
  InvalidArgumentError,
  InvalidOperationError,
  ParallelItemError,
  PoolClosedError,
  RunspacePool,
  type JobContext,
  type JobState,
  type ParallelContext,
} from 'runspaces';
import { blockOnGateThenReturn as gated, Gate } from '../helpers.js';

/** Reports its arrival, then waits for its signal. */
const untilStopped = (ctx: JobContext<{ gate: SharedArrayBuffer }>) => new Promise((_, reject) => {
  const cells = new Int32Array(ctx.using.gate);
  Atomics.add(cells, 1, 1);
  Atomics.notify(cells, 1);
  ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
});

describe('thread jobs', () => {
  test('a job goes NotStarted → Running → Completed, and its output is received once', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const job = pool.startThreadJob((ctx, a: number, b: number) => {
      ctx.writeWarning('adding');
      return a + b;
    }, { args: [1, 2], name: 'sum' });
    const states: JobState[] = [job.state];
    job.on('stateChanged', (change) => states.push(change.state));
    expect(await job.wait()).toBe(true);
    expect(states).toEqual(['NotStarted', 'Running', 'Completed']);
    expect(job).toMatchObject({ name: 'sum', state: 'Completed', isFinished: true, hasMoreData: true });
    expect(job.startTime).toBeInstanceOf(Date);
    expect(job.endTime!.getTime()).toBeGreaterThanOrEqual(job.startTime!.getTime());
    const kept = job.receive({ keep: true });
    expect(kept.output).toEqual([3]);
    expect(kept.records).toMatchObject([{ stream: 'warning', message: 'adding' }]);
    expect(job.receive().output).toEqual([3]);
    expect(job.hasMoreData).toBe(false);
    expect(job.receive()).toEqual({ output: [], errors: [], records: [] });
  });

  test('a job that throws is Failed; wait does not reject, the error is in the error stream', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const job = pool.startThreadJob((ctx) => {
      ctx.writeError(new Error('non-terminating'));
      throw new TypeError('terminating');
    });
    expect(await job.wait()).toBe(true);
    expect(job.state).toBe('Failed');
    expect(job.reason).toBeInstanceOf(TypeError);
    const { errors } = job.receive();
    expect(errors.map((e) => (e as Error).message)).toEqual(['non-terminating', 'terminating']);
  });

  test('wait with a timeout resolves false while the job still runs', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const gate = new Gate();
    const job = pool.startThreadJob(gated, { args: ['done'], using: { gate: gate.buffer } });
    await gate.arrivals(1);
    expect(job.state).toBe('Running');
    expect(await job.wait({ timeout: 20 })).toBe(false);
    gate.open();
    expect(await job.wait({ timeout: 10_000 })).toBe(true);
    expect(job.receive().output).toEqual(['done']);
    await expect(job.wait({ timeout: -1 })).rejects.toThrow(InvalidArgumentError);
  });

  test('stop moves a running job through Stopping to Stopped', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const gate = new Gate();
    const job = pool.startThreadJob(untilStopped, { using: { gate: gate.buffer } });
    const states: JobState[] = [];
    job.on('stateChanged', (change) => states.push(change.state));
    await gate.arrivals(1);
    await job.stop();
    expect(job.state).toBe('Stopped');
    expect(states).toEqual(['Running', 'Stopping', 'Stopped']);
    expect(await pool.invoke(() => 'runspace free again')).toBe('runspace free again');
  });

  test('the job throttle keeps extra jobs NotStarted until a running one finishes', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2, jobThrottleLimit: 1 });
    const gate = new Gate();
    const first = pool.startThreadJob(gated, { args: ['first'], using: { gate: gate.buffer } });
    const second = pool.startThreadJob(gated, { args: ['second'], using: { gate: gate.buffer } });
    await gate.arrivals(1);
    expect(first.state).toBe('Running');
    expect(second.state).toBe('NotStarted');
    // A free runspace exists, so only the throttle holds the second job back.
    expect(pool.getAvailableRunspaces()).toBe(1);
    gate.open();
    await Promise.all([first.wait(), second.wait()]);
    expect([first.receive().output, second.receive().output]).toEqual([['first'], ['second']]);
  });

  test('a job waiting for the throttle can be stopped, and never runs', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1, jobThrottleLimit: 1 });
    const gate = new Gate();
    const first = pool.startThreadJob(gated, { args: ['first'], using: { gate: gate.buffer } });
    const second = pool.startThreadJob(gated, { args: ['second'], using: { gate: gate.buffer } });
    await gate.arrivals(1);
    await second.stop();
    expect(second.state).toBe('Stopped');
    gate.open();
    await first.wait();
    expect(gate.arrived).toBe(1);
  });

  test('initializationScript runs first in the same runspace; input is ctx.input', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const job = pool.startThreadJob((ctx) => ({ prefix: ctx.session.get('prefix'), input: ctx.input }), {
      initializationScript: (ctx) => {
        ctx.session.set('prefix', ctx.using.prefix);
      },
      using: { prefix: 'P' },
      input: new Set(['a', 'b']),
    });
    await job.wait();
    expect(job.receive().output).toEqual([{ prefix: 'P', input: ['a', 'b'] }]);
  });

  // PowerShell's ThreadJob tests: the initialization script's output comes before the job's.
  test('what the initialization script returns comes first in the job\'s output', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const job = pool.startThreadJob((ctx) => 'job output', { initializationScript: () => 'init output' });
    await job.wait();
    expect(job.receive().output).toEqual(['init output', 'job output']);
  });

  // Foreach-Object-Parallel.Tests.ps1 :: Verifies job Command property; Get-Job -Command.
  test('a job\'s command is its script block\'s source (children too); getJobs filters by it', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const greet = (ctx: JobContext) => 'Hello';
    const thread = pool.startThreadJob(greet, { name: 'greeter' });
    const loop = pool.forEachParallel([1], (n: number) => n + 1, { asJob: true });
    const fromModule = pool.startThreadJob({ module: new URL('../fixtures/tasks.js', import.meta.url), export: 'digest' }, { args: ['x'] });
    await Promise.all([thread.wait(), loop.wait(), fromModule.wait()]);
    expect(thread.command).toBe(greet.toString());
    expect(loop.command).toBe('(n) => n + 1');
    expect(loop.childJobs[0]!.command).toBe(loop.command);
    expect(fromModule.command).toMatch(/tasks\.js#digest$/);
    expect(pool.getJobs({ command: 'Hello' })).toEqual([thread]);
    expect(pool.getJobs({ command: /n \+ 1/g })).toEqual([loop]);
    expect(pool.getJobs({ command: /#digest$/, state: 'Completed' })).toEqual([fromModule]);
    expect(pool.getJobs({ command: 'nowhere' })).toEqual([]);
    expect(() => pool.getJobs({ command: 42 as never })).toThrow(InvalidArgumentError);
  });

  test('getJobs lists jobs until removed; a running job is removed only with force', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const gate = new Gate();
    const done = pool.startThreadJob(() => 1, { name: 'quick' });
    const running = pool.startThreadJob(untilStopped, { name: 'slow', using: { gate: gate.buffer } });
    await done.wait();
    await gate.arrivals(1);
    expect(pool.getJobs().map((j) => j.name)).toEqual(['quick', 'slow']);
    expect(pool.getJobs({ state: 'Running' })).toEqual([running]);
    expect(pool.getJobs({ name: 'quick' })).toEqual([done]);
    await expect(running.remove()).rejects.toThrow(InvalidOperationError);
    await running.remove({ force: true });
    expect(running.state).toBe('Stopped');
    await done.remove();
    expect(pool.getJobs()).toEqual([]);
  });

  test('jobs still waiting when the pool closes fail with PoolClosedError', async () => {
    const pool = await RunspacePool.open({ maxRunspaces: 1, jobThrottleLimit: 1 });
    const gate = new Gate();
    const first = pool.startThreadJob(gated, { args: ['first'], using: { gate: gate.buffer } });
    const waiting = pool.startThreadJob(gated, { args: ['never'], using: { gate: gate.buffer } });
    await gate.arrivals(1);
    const closed = pool.close();
    gate.open();
    await closed;
    expect(first.state).toBe('Completed');
    expect(waiting.state).toBe('Failed');
    expect(waiting.reason).toBeInstanceOf(PoolClosedError);
    expect(() => pool.startThreadJob(() => 1)).toThrow(PoolClosedError);
  });

  test('bad options are refused before the job exists', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    expect(() => pool.startThreadJob(() => 1, { initializationScript: 'x' as never })).toThrow(InvalidArgumentError);
    expect(() => pool.startThreadJob(() => 1, { input: 5 as never })).toThrow(InvalidArgumentError);
    expect(() => pool.startThreadJob(() => 1, { using: { f: () => 1 } as never })).toThrow(expect.objectContaining({ code: 'ERR_USING_FUNCTION' }));
    expect(pool.getJobs()).toEqual([]);
  });
});

describe('a loop run as a job', () => {
  test('has one child job per item; the parent completes when every child did; receive gives outputs in input order', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const job = pool.forEachParallel([1, 2, 3, 4], (x: number, ctx) => {
      ctx.writeVerbose(`item ${x}`);
      return x * 10;
    }, { asJob: true, name: 'tens' });
    expect(pool.getJobs()).toEqual([job]);
    await job.wait();
    expect(job.state).toBe('Completed');
    expect(job.childJobs.map((c) => c.state)).toEqual(['Completed', 'Completed', 'Completed', 'Completed']);
    expect(job.childJobs[2]!.name).toBe('tens[2]');
    expect(job.childJobs[2]!.receive({ keep: true }).records).toMatchObject([{ stream: 'verbose', message: 'item 3', index: 2 }]);
    const data = job.receive();
    expect(data.output).toEqual([10, 20, 30, 40]);
    expect(data.records).toHaveLength(4);
    expect(job.hasMoreData).toBe(false);
  });

  test('a failing item fails its child and the parent; the other children complete', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const job = pool.forEachParallel([1, 2, 3], (x: number) => {
      if (x === 2) throw new Error('two');
      return x;
    }, { asJob: true });
    await job.wait();
    expect(job.state).toBe('Failed');
    expect(job.childJobs.map((c) => c.state)).toEqual(['Completed', 'Failed', 'Completed']);
    expect(job.childJobs[1]!.reason).toBeInstanceOf(ParallelItemError);
    const data = job.receive();
    expect(data.output).toEqual([1, 3]);
    expect(data.errors).toHaveLength(1);
  });

  test('with throttleLimit 2, two children run and two wait NotStarted until a slot frees (PowerShell\'s job queuing test)', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 4 });
    const gate = new Gate();
    const job = pool.forEachParallel([0, 1, 2, 3], (x: number, ctx: ParallelContext<{ gate: SharedArrayBuffer }>) => {
      const cells = new Int32Array(ctx.using.gate);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      Atomics.wait(cells, 0, 0);
      return x;
    }, { asJob: true, using: { gate: gate.buffer }, throttleLimit: 2 });
    expect(job.state).toBe('NotStarted');
    expect(job.childJobs.map((c) => c.state)).toEqual(['NotStarted', 'NotStarted', 'NotStarted', 'NotStarted']);
    await gate.arrivals(2);
    await Promise.all(job.childJobs.slice(0, 2).map((child) => reaches(child, 'Running')));
    expect(job.state).toBe('Running');
    expect(job.childJobs.map((c) => c.state)).toEqual(['Running', 'Running', 'NotStarted', 'NotStarted']);
    gate.open();
    await job.wait();
    expect(job.childJobs.map((c) => c.state)).toEqual(['Completed', 'Completed', 'Completed', 'Completed']);
    expect(job.receive().output).toEqual([0, 1, 2, 3]);
  });

  test('stop ends the loop: the parent is Stopped, unfinished children too', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const gate = new Gate();
    const job = pool.forEachParallel(Array.from({ length: 10 }, (_, i) => i), (x: number, ctx: ParallelContext<{ gate: SharedArrayBuffer }>) => {
      const cells = new Int32Array(ctx.using.gate);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      return new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
    }, { asJob: true, using: { gate: gate.buffer }, throttleLimit: 2 });
    await gate.arrivals(2);
    expect(job.state).toBe('Running');
    await job.stop();
    expect(job.state).toBe('Stopped');
    expect(job.childJobs.length).toBeGreaterThanOrEqual(2);
    expect(job.childJobs.every((c) => c.state === 'Stopped')).toBe(true);
  });
});

/** Resolves once `job` is in `state` (at once if it already is). */
function reaches(job: { readonly state: JobState; on(event: 'stateChanged', listener: (change: { state: JobState }) => void): unknown }, state: JobState): Promise<void> {
  if (job.state === state) return Promise.resolve();
  return new Promise((resolve) => job.on('stateChanged', (change) => {
    if (change.state === state) resolve();
  }));
}
