import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RunspacePool } from 'runspaces';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 2 });
});
afterAll(() => pool.close());

describe('inputs that break the iterator protocol', () => {
  test('an iterator whose next() returns a non-object ends the loop with a TypeError, as for...of does', async () => {
    const input = { [Symbol.iterator]: () => ({ next: () => 5 as unknown as IteratorResult<number> }) };
    await expect(pool.forEachParallel(input, (n: number) => n).toArray()).rejects.toThrow(TypeError);
  });

  test('an async iterator whose next() resolves to a non-object ends the loop with a TypeError', async () => {
    const input = { [Symbol.asyncIterator]: () => ({ next: async () => null as unknown as IteratorResult<number> }) };
    await expect(pool.forEachParallel(input, (n: number) => n).toArray()).rejects.toThrow(TypeError);
  });
});
