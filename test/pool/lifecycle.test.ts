import { describe, expect, test } from 'vitest';
import { InvalidArgumentError, InvalidPoolStateError, PoolClosedError, RunspacePool, type PoolStateChange } from 'runspaces';
import { blockOnGate, Gate, once, spinAfterArrival } from '../helpers.js';

const whoAmI = (ctx: { runspaceId: number }) => ctx.runspaceId;

describe('pool lifecycle', () => {
  test('a pool moves BeforeOpen → Opening → Opened → Closing → Closed and reports each change', async () => {
    const pool = new RunspacePool({ minRunspaces: 1, maxRunspaces: 2 });
    const changes: string[] = [];
    pool.on('stateChanged', (change: PoolStateChange) => changes.push(`${change.previous}>${change.state}`));
    expect(pool.state).toBe('BeforeOpen');
    await pool.open();
    expect(pool.state).toBe('Opened');
    await pool.close();
    expect(pool.state).toBe('Closed');
    expect(changes).toEqual(['BeforeOpen>Opening', 'Opening>Opened', 'Opened>Closing', 'Closing>Closed']);
  });

  test('open starts minRunspaces runspaces and no more', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 4 });
    expect(pool.stats()).toMatchObject({ runspaces: 2, idle: 2, busy: 0, queued: 0 });
  });

  test('the pool grows lazily under load and never past maxRunspaces', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 0, maxRunspaces: 3 });
    expect(pool.stats().runspaces).toBe(0);
    const gate = new Gate();
    const calls = Array.from({ length: 6 }, () => pool.invoke(blockOnGate, { using: { gate: gate.buffer } }));
    await gate.arrivals(3);
    expect(pool.stats()).toMatchObject({ runspaces: 3, busy: 3, queued: 3 });
    gate.open();
    const ids = await Promise.all(calls);
    expect(new Set(ids).size).toBe(3);
    expect(pool.stats().runspaces).toBe(3);
  });

  test('idle runspaces above the minimum are trimmed after idleTimeout', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 3, idleTimeout: 30 });
    const gate = new Gate();
    const calls = Array.from({ length: 3 }, () => pool.invoke(blockOnGate, { using: { gate: gate.buffer } }));
    await gate.arrivals(3);
    const closed: string[] = [];
    const trimmedTwo = new Promise<void>((resolve) => pool.on('runspaceClosed', (info) => {
      closed.push(info.reason);
      if (closed.length === 2) resolve();
    }));
    gate.open();
    await Promise.all(calls);
    await trimmedTwo;
    expect(closed).toEqual(['trimmed: idle past idleTimeout', 'trimmed: idle past idleTimeout']);
    expect(pool.stats().runspaces).toBe(1);
  });

  test('idle runspaces are reused last in, first out', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    a.release();
    b.release();
    expect(await pool.invoke(whoAmI)).toBe(b.id);
    const c = await pool.acquire();
    const d = await pool.acquire();
    expect(c.id).toBe(b.id);
    d.release();
    c.release();
    expect(await pool.invoke(whoAmI)).toBe(c.id);
  });

  test('waiting calls are served first come, first served', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    const gate = new Gate();
    const blocker = pool.invoke(blockOnGate, { using: { gate: gate.buffer } });
    await gate.arrivals(1);
    const order = new Int32Array(new SharedArrayBuffer(4 * 21));
    const waiting = Array.from({ length: 20 }, (_, i) => pool.invoke((ctx, index: number) => {
      const cells = new Int32Array(ctx.using.order as SharedArrayBuffer);
      const position = Atomics.add(cells, 0, 1);
      cells[position + 1] = index;
    }, { args: [i], using: { order: order.buffer } }));
    expect(pool.stats().queued).toBe(20);
    gate.open();
    await Promise.all([blocker, ...waiting]);
    expect([...order.subarray(1)]).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  test('setMaxRunspaces and setMinRunspaces refuse invalid values and accept valid ones', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 2 });
    expect(pool.setMaxRunspaces(0)).toBe(false);
    expect(pool.setMaxRunspaces(1.5)).toBe(false);
    expect(pool.setMinRunspaces(-1)).toBe(false);
    expect(pool.setMinRunspaces(3)).toBe(false);
    expect(pool.getMaxRunspaces()).toBe(2);
    expect(pool.getMinRunspaces()).toBe(1);
    expect(pool.setMaxRunspaces(4)).toBe(true);
    expect(pool.setMinRunspaces(3)).toBe(true);
    expect(pool.setMaxRunspaces(2)).toBe(false);
    expect([pool.getMinRunspaces(), pool.getMaxRunspaces()]).toEqual([3, 4]);
  });

  test('raising minRunspaces opens runspaces up to it', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 3 });
    const opened = new Promise<void>((resolve) => {
      let count = 0;
      pool.on('runspaceOpened', () => ++count === 2 && resolve());
    });
    expect(pool.setMinRunspaces(3)).toBe(true);
    await opened;
    expect(pool.stats().runspaces).toBe(3);
  });

  test('getAvailableRunspaces counts how many more calls could start now', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 3 });
    expect(pool.getAvailableRunspaces()).toBe(3);
    const gate = new Gate();
    const call = pool.invoke(blockOnGate, { using: { gate: gate.buffer } });
    await gate.arrivals(1);
    const held = await pool.acquire();
    expect(pool.getAvailableRunspaces()).toBe(1);
    gate.open();
    await call;
    held.release();
    expect(pool.getAvailableRunspaces()).toBe(3);
  });

  test('stats count completed and failed calls and report latency percentiles', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    await Promise.all(Array.from({ length: 50 }, (_, i) => pool.invoke((ctx, n: number) => n, { args: [i] })));
    await expect(pool.invoke(() => { throw new Error('no'); })).rejects.toThrow('no');
    const stats = pool.stats();
    expect(stats.completed).toBe(50);
    expect(stats.failed).toBe(1);
    expect(stats.runTime.count).toBe(51);
    expect(stats.waitTime.count).toBe(51);
    expect(stats.runTime.p99).toBeGreaterThanOrEqual(stats.runTime.p50);
    expect(stats.runTime.max).toBeGreaterThanOrEqual(stats.runTime.p99);
  });
});

describe('closing', () => {
  test('close lets running work finish and rejects work still waiting', async () => {
    const pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    const gate = new Gate();
    const running = pool.invoke(blockOnGate, { using: { gate: gate.buffer } });
    await gate.arrivals(1);
    const waiting = pool.invoke(() => 'never');
    const closed = pool.close();
    await expect(waiting).rejects.toBeInstanceOf(PoolClosedError);
    expect(pool.state).toBe('Closing');
    gate.open();
    await expect(running).resolves.toBeTypeOf('number');
    await closed;
    expect(pool.state).toBe('Closed');
  });

  test('a closed pool refuses work with PoolClosedError', async () => {
    const pool = await RunspacePool.open({ maxRunspaces: 1 });
    await pool.close();
    await expect(pool.invoke(() => 1)).rejects.toMatchObject({ name: 'PoolClosedError', code: 'ERR_POOL_CLOSED' });
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolClosedError);
  });

  test('a pool that was never opened refuses work with InvalidPoolStateError', async () => {
    const pool = new RunspacePool({ maxRunspaces: 1 });
    await expect(pool.invoke(() => 1)).rejects.toMatchObject({ code: 'ERR_POOL_STATE', state: 'BeforeOpen' });
    expect(pool.stats().runspaces).toBe(0);
    await pool.close();
  });

  test('destroy ends at once, even a runspace stuck in a loop, and rejects its work', async () => {
    const pool = await RunspacePool.open({ maxRunspaces: 2 });
    const gate = new Gate();
    const stuck = pool.invoke(spinAfterArrival, { using: { gate: gate.buffer } });
    await gate.arrivals(1);
    const queued = Promise.allSettled(Array.from({ length: 5 }, () => pool.invoke(() => 1)));
    const stuckOutcome = stuck.catch((error: unknown) => error);
    await pool.destroy();
    expect(pool.state).toBe('Closed');
    expect(await stuckOutcome).toBeInstanceOf(PoolClosedError);
    for (const outcome of await queued) {
      if (outcome.status === 'fulfilled') expect(outcome.value).toBe(1);
      else expect(outcome.reason).toBeInstanceOf(PoolClosedError);
    }
  });

  test('await using closes the pool at the end of the scope', async () => {
    let escaped: RunspacePool;
    {
      await using pool = await RunspacePool.open({ maxRunspaces: 1 });
      escaped = pool;
      expect(await pool.invoke(() => 'in scope')).toBe('in scope');
    }
    expect(escaped.state).toBe('Closed');
  });
});

describe('invalid options', () => {
  test.each([
    [{ minRunspaces: 3, maxRunspaces: 2 }, 'minRunspaces'],
    [{ maxRunspaces: 0 }, 'maxRunspaces'],
    [{ maxRunspaces: 2.5 }, 'maxRunspaces'],
    [{ minRunspaces: -1 }, 'minRunspaces'],
    [{ idleTimeout: -5 }, 'idleTimeout'],
    [{ spinBeforeSleep: -1 }, 'spinBeforeSleep'],
    [{ cancelGracePeriod: Number.NaN }, 'cancelGracePeriod'],
    [{ initialSessionState: { variables: { f: () => 1 } } }, 'initialSessionState.variables.f'],
  ])('%o is refused with a typed error naming %s, before anything starts', (options, name) => {
    let caught: unknown;
    try {
      new RunspacePool(options as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(Error);
    expect((caught as Error).message).toContain(name);
    expect((caught as { code: string }).code).toMatch(/^ERR_(INVALID_ARGUMENT|USING_FUNCTION)$/);
  });

  test('an invalid pool option is an InvalidArgumentError', () => {
    expect(() => new RunspacePool({ maxRunspaces: -1 })).toThrow(InvalidArgumentError);
  });

  test('open on a closed pool is refused', async () => {
    const pool = await RunspacePool.open({ maxRunspaces: 1 });
    await pool.close();
    await expect(pool.open()).rejects.toBeInstanceOf(InvalidPoolStateError);
  });
});

test('once helper resolves with the first event', async () => {
  const pool = new RunspacePool({ maxRunspaces: 1 });
  const change = once<PoolStateChange>(pool, 'stateChanged');
  await pool.open();
  expect((await change).state).toBe('Opening');
  await pool.close();
});

test('work submitted while the pool is opening is queued and runs once a runspace is ready', async () => {
  const pool = new RunspacePool({ minRunspaces: 2, maxRunspaces: 2 });
  const opened = pool.open();
  const first = pool.invoke((ctx) => ctx.runspaceId);
  expect(pool.state).toBe('Opening');
  expect(await first).toBeGreaterThan(0);
  await opened;
  expect(pool.state).toBe('Opened');
  await pool.close();
});

describe('Node flags of the process', () => {
  test('a process started with a V8 flag (--expose-gc) still opens runspaces, which inherit it', async () => {
    const { execFileSync } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const script = fileURLToPath(new URL('../fixtures/open-pool.js', import.meta.url));
    expect(execFileSync(process.execPath, ['--expose-gc', script], { encoding: 'utf8' }).trim()).toBe('function');
  });
});
