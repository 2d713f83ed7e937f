import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { InvalidArgumentError, InvalidOperationError, RunspacePool, currentContext } from 'runspaces';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 2 });
});
afterAll(() => pool.close());

const piscinaWorker = new URL('../fixtures/piscina-worker.js', import.meta.url);

describe('module functions', () => {
  test('a piscina-style default export runs unchanged with context: false, in invoke, loops and jobs', async () => {
    expect(await pool.invoke({ module: piscinaWorker, context: false }, { args: [21] })).toBe(42);
    expect(await pool.forEachParallel([1, 2, 3], { module: piscinaWorker, context: false }, { ordered: true }).toArray()).toEqual([2, 4, 6]);
    const job = pool.startThreadJob({ module: piscinaWorker, context: false }, { args: [5] });
    await job.wait();
    expect(job.receive().output).toEqual([10]);
  });

  test('currentContext() reaches the call’s context from a module function called without one; outside a call it throws', async () => {
    expect(await pool.invoke({ module: piscinaWorker, export: 'tagged', context: false }, { args: ['x'], using: { tag: 't' } })).toBe('x:t:-');
    expect(await pool.forEachParallel(['a', 'b'], { module: piscinaWorker, export: 'tagged', context: false }, { using: { tag: 'u' }, ordered: true }).toArray()).toEqual(['a:u:0', 'b:u:1']);
    expect(() => currentContext()).toThrow(InvalidOperationError);
  });

  test('context must be a boolean', async () => {
    await expect(pool.invoke({ module: piscinaWorker, context: 'no' as never })).rejects.toThrow(InvalidArgumentError);
  });
});
