import { describe, expect, test } from 'vitest';
import { OperationCancelledError, RunspacePool, TimeoutError } from 'runspaces';
import { blockOnGate, Gate, spinAfterArrival } from '../helpers.js';

/** Reports that it started, then waits (asynchronously) for its signal. */
const cooperative = (ctx: import('runspaces').RunspaceContext<{ gate: SharedArrayBuffer }>) => new Promise((_, reject) => {
  const cells = new Int32Array(ctx.using.gate);
  Atomics.add(cells, 1, 1);
  Atomics.notify(cells, 1);
  ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
});

describe('cancellation', () => {
  test('an abort reaches a cooperating call through ctx.signal; its runspace and session survive', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const rs = await pool.acquire();
    await rs.setVariable('kept', 'yes');
    const gate = new Gate();
    const controller = new AbortController();
    const call = rs.invoke(cooperative, { using: { gate: gate.buffer }, signal: controller.signal });
    await gate.arrivals(1);
    controller.abort(new Error('user gave up'));
    const error = (await call.catch((e: unknown) => e)) as OperationCancelledError;
    expect(error).toBeInstanceOf(OperationCancelledError);
    expect(error).toMatchObject({ code: 'ERR_CANCELLED', runspaceRecycled: false });
    expect((error.reason as Error).message).toBe('user gave up');
    expect(await rs.getVariable('kept')).toBe('yes');
    rs.release();
  });

  test('a synchronous loop polling ctx.signal.aborted sees the cancellation without yielding', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const gate = new Gate();
    const controller = new AbortController();
    const id = await pool.invoke((ctx) => ctx.runspaceId);
    const call = pool.invoke((ctx) => {
      const cells = new Int32Array(ctx.using.gate as SharedArrayBuffer);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      let spins = 0;
      while (!ctx.signal.aborted) spins++;
      ctx.signal.throwIfAborted();
      return spins;
    }, { using: { gate: gate.buffer }, signal: controller.signal });
    await gate.arrivals(1);
    controller.abort();
    await expect(call).rejects.toMatchObject({ runspaceRecycled: false });
    expect(await pool.invoke((ctx) => ctx.runspaceId)).toBe(id);
  });

  test('a call that ignores its signal is stopped after the grace period by recycling its runspace', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1, cancelGracePeriod: 50 });
    const id = await pool.invoke((ctx) => ctx.runspaceId);
    const gate = new Gate();
    const controller = new AbortController();
    const call = pool.invoke(spinAfterArrival, { using: { gate: gate.buffer }, signal: controller.signal });
    await gate.arrivals(1);
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: 'ERR_CANCELLED', runspaceRecycled: true });
    const after = await pool.invoke((ctx) => ctx.runspaceId);
    expect(after).not.toBe(id);
  });

  test('a timeout cancels the call with a TimeoutError, cooperatively', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const error = await pool.invoke((ctx) => new Promise((_, reject) => {
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
    }), { timeout: 20 }).catch((e: unknown) => e as TimeoutError);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ code: 'ERR_TIMEOUT', timeout: 20, runspaceRecycled: false });
  });

  test('the signal inside the runspace carries a TimeoutError reason on timeout', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const rs = await pool.acquire();
    await rs.invoke((ctx) => new Promise<void>((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        ctx.session.set('reason', (ctx.signal.reason as DOMException).name);
        resolve();
      });
    }), { timeout: 10 }).catch(() => undefined);
    expect(await rs.getVariable('reason')).toBe('TimeoutError');
    rs.release();
  });

  test('a queued call that is aborted never starts', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    const gate = new Gate();
    const blocker = pool.invoke(blockOnGate, { using: { gate: gate.buffer } });
    await gate.arrivals(1);
    const controller = new AbortController();
    const ran = new Int32Array(new SharedArrayBuffer(4));
    const queued = pool.invoke((ctx) => { Atomics.store(new Int32Array(ctx.using.ran as SharedArrayBuffer), 0, 1); }, { using: { ran: ran.buffer }, signal: controller.signal });
    controller.abort();
    await expect(queued).rejects.toBeInstanceOf(OperationCancelledError);
    expect(pool.stats().queued).toBe(0);
    gate.open();
    await blocker;
    await pool.invoke(() => 'flush');
    expect(ran[0]).toBe(0);
  });

  test('an already-aborted signal rejects at once without starting anything', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1, minRunspaces: 0 });
    await expect(pool.invoke(() => 1, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(OperationCancelledError);
    expect(pool.stats().runspaces).toBe(0);
  });
});
