import { describe, expect, test } from 'vitest';
import { InvalidArgumentError, OperationCancelledError, RunspaceBrokenError, RunspacePool, type RunspaceContext } from 'runspaces';
import { awaitGateThenReturn as awaitGate, Gate } from '../helpers.js';

/** Counts the calls of this runspace that are between their start and their end; returns the most it saw at once. */
const overlapProbe = async (ctx: RunspaceContext): Promise<number> => {
  const running = ((ctx.session.get('running') as number | undefined) ?? 0) + 1;
  ctx.session.set('running', running);
  ctx.session.set('most', Math.max(running, (ctx.session.get('most') as number | undefined) ?? 0));
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  ctx.session.set('running', (ctx.session.get('running') as number) - 1);
  return ctx.session.get('most') as number;
};

describe('concurrency: several awaiting calls in one runspace', () => {
  test('with concurrency 4, four calls that await run at once in one runspace', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1, concurrency: 4 });
    const gate = new Gate();
    const calls = [0, 1, 2, 3].map((i) => pool.invoke(awaitGate, { args: [i], using: { gate: gate.buffer } }));
    // All four reach the gate before any is let through: they are running side by side.
    await gate.arrivals(4);
    gate.open();
    expect(await Promise.all(calls)).toEqual([0, 1, 2, 3]);
    expect(await pool.invoke(overlapProbe)).toBe(1);
  });

  test('by default a runspace runs one call at a time, even when calls await', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    const most = await Promise.all(Array.from({ length: 8 }, () => pool.invoke(overlapProbe)));
    expect(Math.max(...most)).toBe(1);
  });

  test('calls interleave up to the limit and never beyond it', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1, concurrency: 3 });
    const most = await Promise.all(Array.from({ length: 12 }, () => pool.invoke(overlapProbe)));
    expect(Math.max(...most)).toBe(3);
  });

  test('busy runspaces with free slots take calls before the pool grows', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 2, concurrency: 2 });
    const gate = new Gate();
    const calls = [0, 1, 2, 3].map(() => pool.invoke(awaitGateRunspace, { using: { gate: gate.buffer } }));
    await gate.arrivals(4);
    gate.open();
    const ids = await Promise.all(calls);
    const perRunspace = new Map<number, number>();
    for (const id of ids) perRunspace.set(id, (perRunspace.get(id) ?? 0) + 1);
    expect([...perRunspace.values()]).toEqual([2, 2]);
  });

  test('currentContext() after an await is the calling call\'s own context', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1, concurrency: 4 });
    const gate = new Gate();
    const ownContext = async (ctx: RunspaceContext<{ gate: SharedArrayBuffer; id: number }>) => {
      const { currentContext } = await import('runspaces');
      const cells = new Int32Array(ctx.using.gate);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      const waiting = Atomics.waitAsync(cells, 0, 0);
      if (waiting.async) await waiting.value;
      return [ctx.using.id, (currentContext() as RunspaceContext<{ id: number }>).using.id];
    };
    const calls = [0, 1, 2, 3].map((id) => pool.invoke(ownContext, { using: { gate: gate.buffer, id } }));
    await gate.arrivals(4);
    gate.open();
    expect(await Promise.all(calls)).toEqual([[0, 0], [1, 1], [2, 2], [3, 3]]);
  });

  test('cancelling one call leaves the calls beside it running', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1, concurrency: 3 });
    const gate = new Gate();
    const cancellable = async (ctx: RunspaceContext<{ gate: SharedArrayBuffer }>, value: number) => {
      const cells = new Int32Array(ctx.using.gate);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      const waiting = Atomics.waitAsync(cells, 0, 0);
      const aborted = new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      await Promise.race([waiting.async ? waiting.value : undefined, aborted]);
      return value;
    };
    const controller = new AbortController();
    const calls = [0, 1, 2].map((i) => pool.invoke(cancellable, { args: [i], using: { gate: gate.buffer }, signal: i === 1 ? controller.signal : undefined }));
    await gate.arrivals(3);
    controller.abort(new Error('not this one'));
    const cancelled = await calls[1]!.catch((error: unknown) => error);
    expect(cancelled).toBeInstanceOf(OperationCancelledError);
    expect(cancelled).toMatchObject({ runspaceRecycled: false });
    gate.open();
    expect(await calls[0]).toBe(0);
    expect(await calls[2]).toBe(2);
  });

  test('a runspace that dies fails every call running in it; the pool goes on', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1, concurrency: 4 });
    const gate = new Gate();
    const waiting = [0, 1, 2].map((i) => pool.invoke(awaitGate, { args: [i], using: { gate: gate.buffer } }));
    await gate.arrivals(3);
    const dying = pool.invoke(() => process.exit(3));
    for (const call of [...waiting, dying]) {
      const error = await call.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RunspaceBrokenError);
      expect(error).toMatchObject({ exitCode: 3 });
    }
    expect(await pool.invoke((ctx, n: number) => n * 2, { args: [21] })).toBe(42);
  });

  test('a parallel loop on a concurrent pool delivers every item once, in order', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2, concurrency: 4 });
    const input = Array.from({ length: 2_000 }, (_, i) => i);
    const beside = Array.from({ length: 20 }, (_, i) => pool.invoke(async (ctx, n: number) => {
      await new Promise((resolve) => setImmediate(resolve));
      return n;
    }, { args: [i] }));
    const outputs = await pool.forEachParallel(input, async (n: number) => {
      await Promise.resolve();
      return n * 3;
    }, { throttleLimit: 2, ordered: true });
    expect(outputs).toEqual(input.map((n) => n * 3));
    expect(await Promise.all(beside)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  test.each([0, -1, 1.5, Infinity, NaN, '2'])('concurrency %s is refused, naming the option', (concurrency) => {
    expect(() => new RunspacePool({ concurrency: concurrency as number })).toThrow(InvalidArgumentError);
    expect(() => new RunspacePool({ concurrency: concurrency as number })).toThrow(/concurrency/);
  });
});

/** Reports arrival at the gate, awaits it, and returns the runspace it ran in. */
async function awaitGateRunspace(ctx: RunspaceContext<{ gate: SharedArrayBuffer }>): Promise<number> {
  const cells = new Int32Array(ctx.using.gate);
  Atomics.add(cells, 1, 1);
  Atomics.notify(cells, 1);
  const waiting = Atomics.waitAsync(cells, 0, 0);
  if (waiting.async) await waiting.value;
  return ctx.runspaceId;
}
