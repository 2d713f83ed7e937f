import { describe, expect, test } from 'vitest';
import { RunspacePool, RunspaceReleasedError, TimeoutError } from 'runspaces';
import { blockOnGate, Gate } from '../helpers.js';

describe('acquired runspaces', () => {
  test('an acquired runspace is exclusive: pool work never runs on it', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
    const rs = await pool.acquire();
    const ids = await Promise.all(Array.from({ length: 200 }, () => pool.invoke((ctx) => ctx.runspaceId)));
    expect(ids).not.toContain(rs.id);
    rs.release();
  });

  test('calls to an acquired runspace do not wait behind unrelated queued work', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
    const rs = await pool.acquire();
    const gate = new Gate();
    const blocked = Array.from({ length: 10 }, () => pool.invoke(blockOnGate, { using: { gate: gate.buffer } }));
    await gate.arrivals(1);
    expect(pool.stats().queued).toBe(9);
    expect(await rs.invoke((ctx) => ctx.runspaceId)).toBe(rs.id);
    expect(pool.stats().queued).toBe(9);
    gate.open();
    await Promise.all(blocked);
    rs.release();
  });

  test('the idle timer never closes an acquired runspace', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 0, maxRunspaces: 2, idleTimeout: 10 });
    const rs = await pool.acquire();
    await rs.setVariable('state', 'kept');
    // A second runspace goes idle and is trimmed: proof that the idle timers ran.
    const other = await pool.acquire();
    const trimmed = new Promise<number>((resolve) => pool.on('runspaceClosed', (info) => resolve(info.runspaceId)));
    other.release();
    expect(await trimmed).toBe(other.id);
    expect(await rs.getVariable('state')).toBe('kept');
    expect(pool.stats()).toMatchObject({ runspaces: 1, acquired: 1 });
    rs.release();
  });

  test('getVariable and setVariable read and write the session of that runspace', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const rs = await pool.acquire();
    await rs.setVariable('config', { depth: 3 });
    expect(await rs.invoke((ctx) => ctx.session.get('config'))).toEqual({ depth: 3 });
    await rs.invoke((ctx) => { ctx.session.set('answer', 42); });
    expect(await rs.getVariable<number>('answer')).toBe(42);
    expect(await rs.getVariable('missing')).toBeUndefined();
    rs.release();
  });

  test('acquire waits in line when every runspace is busy, and gets one when it frees', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    const gate = new Gate();
    const busy = pool.invoke(blockOnGate, { using: { gate: gate.buffer } });
    await gate.arrivals(1);
    const waiting = pool.acquire();
    expect(pool.stats().queued).toBe(1);
    gate.open();
    const id = await busy;
    const rs = await waiting;
    expect(rs.id).toBe(id);
    rs.release();
  });

  test('acquire with a timeout rejects with TimeoutError and leaves no waiter behind', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    const held = await pool.acquire();
    await expect(pool.acquire({ timeout: 10 })).rejects.toBeInstanceOf(TimeoutError);
    expect(pool.stats().queued).toBe(0);
    held.release();
    const again = await pool.acquire();
    expect(again.id).toBe(held.id);
    again.release();
  });

  test('a released handle refuses further calls with RunspaceReleasedError', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const rs = await pool.acquire();
    rs.release();
    rs.release();
    await expect(rs.invoke(() => 1)).rejects.toBeInstanceOf(RunspaceReleasedError);
    await expect(rs.getVariable('x')).rejects.toMatchObject({ code: 'ERR_RUNSPACE_RELEASED' });
  });

  test('await using releases the runspace at the end of the scope, keeping its session', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    let id: number;
    {
      await using rs = await pool.acquire();
      id = rs.id;
      await rs.setVariable('left', 'behind');
      expect(pool.stats().acquired).toBe(1);
    }
    expect(pool.stats().acquired).toBe(0);
    expect(await pool.invoke((ctx) => [ctx.runspaceId, ctx.session.get('left')])).toEqual([id, 'behind']);
  });

  test('release while calls run returns the runspace to the pool once they finish', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    const rs = await pool.acquire();
    const gate = new Gate();
    const running = rs.invoke(blockOnGate, { using: { gate: gate.buffer } });
    await gate.arrivals(1);
    rs.release();
    const next = pool.invoke((ctx) => ctx.runspaceId);
    gate.open();
    expect(await running).toBe(rs.id);
    expect(await next).toBe(rs.id);
  });

  test('close waits for calls running on acquired runspaces', async () => {
    const pool = await RunspacePool.open({ maxRunspaces: 1 });
    const rs = await pool.acquire();
    const gate = new Gate();
    const running = rs.invoke(blockOnGate, { using: { gate: gate.buffer } });
    await gate.arrivals(1);
    const closed = pool.close();
    await expect(rs.invoke(() => 1)).rejects.toMatchObject({ code: 'ERR_POOL_CLOSED' });
    gate.open();
    expect(await running).toBe(rs.id);
    await closed;
    expect(pool.state).toBe('Closed');
  });
});
