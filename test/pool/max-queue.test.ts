import { once } from 'node:events';
import { describe, expect, test } from 'vitest';
import { InvalidArgumentError, PoolQueueFullError, RunspacePool } from 'runspaces';
import { blockOnGateThenReturn as gated, Gate } from '../helpers.js';

describe('maxQueue and the drain event', () => {
  test('calls beyond maxQueue are refused with a typed error; the accepted ones all finish; drain fires once the line empties', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1, maxQueue: 2 });
    const gate = new Gate();
    const using = { gate: gate.buffer };
    const running = pool.invoke(gated, { args: [1], using });
    await gate.arrivals(1);
    const waiting = [pool.invoke(gated, { args: [2], using }), pool.invoke(gated, { args: [3], using })];
    expect(pool.queueSize).toBe(2);
    const refused = await pool.invoke(gated, { args: [4], using }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(PoolQueueFullError);
    expect(refused).toMatchObject({ code: 'ERR_POOL_QUEUE_FULL', maxQueue: 2 });

    const drained = once(pool, 'drain');
    gate.open();
    await drained;
    expect(pool.queueSize).toBe(0);
    expect(await Promise.all([running, ...waiting])).toEqual([1, 2, 3]);
    expect(await pool.invoke((ctx, n: number) => n, { args: [5] })).toBe(5);
  });

  test('maxQueue 0: a free runspace still takes a call; a call that would wait is refused', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1, maxQueue: 0 });
    const gate = new Gate();
    const running = pool.invoke(gated, { args: [1], using: { gate: gate.buffer } });
    await gate.arrivals(1);
    await expect(pool.invoke((ctx) => 2)).rejects.toBeInstanceOf(PoolQueueFullError);
    gate.open();
    expect(await running).toBe(1);
  });

  test.each([-1, 1.5, '3', NaN])('maxQueue %s is refused, naming the option', (maxQueue) => {
    expect(() => new RunspacePool({ maxQueue: maxQueue as number })).toThrow(InvalidArgumentError);
    expect(() => new RunspacePool({ maxQueue: maxQueue as number })).toThrow(/maxQueue/);
  });
});
