import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ParallelItemError, RunspaceBrokenError, RunspacePool, type ParallelContext } from 'runspaces';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 3 });
});
afterAll(() => pool.close());

interface Plan {
  /** Items that throw. */
  readonly failing: readonly number[];
  /** Items that end their runspace. */
  readonly killers: readonly number[];
  /** Items that take about a millisecond, so chunk sizes change mid-loop. */
  readonly slow: readonly number[];
}

/** Runs one item of a random plan: throw, die, spin a while, or return the item. */
const planned = (item: number, ctx: ParallelContext<Plan>): number | Promise<number> => {
  if (ctx.using.killers.includes(item)) process.exit(5);
  if (ctx.using.failing.includes(item)) throw new Error(`item ${item} fails`);
  if (ctx.using.slow.includes(item)) {
    const end = performance.now() + 1;
    while (performance.now() < end);
  }
  return item % 7 === 0 ? Promise.resolve(item) : item;
};

test('random loops: every item ends exactly once, as its output or as its error; ordered outputs keep input order', async () => {
  await fc.assert(fc.asyncProperty(
    fc.integer({ min: 0, max: 3000 }).chain((n) => fc.record({
      n: fc.constant(n),
      throttleLimit: fc.integer({ min: 1, max: 4 }),
      ordered: fc.boolean(),
      asyncInput: fc.boolean(),
      failing: fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, n - 1) }), { maxLength: 5 }),
      killers: fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, n - 1) }), { maxLength: 2 }),
      slow: fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, n - 1) }), { maxLength: 20 }),
    })),
    async ({ n, throttleLimit, ordered, asyncInput, failing: anyFailing, killers: anyKillers, slow }) => {
      // With no items, the generated indices point nowhere.
      const failing = anyFailing.filter((i) => i < n);
      const killers = anyKillers.filter((i) => i < n && !failing.includes(i));
      const items = Array.from({ length: n }, (_, i) => i);
      async function* fromAsync(): AsyncGenerator<number> {
        yield* items;
      }
      const loop = pool.forEachParallel(asyncInput ? fromAsync() : items, planned, {
        throttleLimit, ordered, using: { failing, killers, slow }, errorAction: 'continue',
      });
      const outputs = await loop.toArray();
      const errors = loop.errors;
      const seen = new Uint8Array(n);
      for (const index of [...outputs, ...errors.map((e) => e.index)]) seen[index]++;
      const wrong = [...seen.keys()].filter((i) => seen[i] !== 1).map((i) => `${i}x${seen[i]}`);
      expect(wrong, `outputs ${JSON.stringify(outputs.slice(0, 50))} errors ${JSON.stringify(errors.map((e) => [e.index, (e.cause as Error).message]))}`).toEqual([]);
      for (const index of failing) {
        // Its own error, unless a runspace died later in the same chunk and took the chunk's outcome with it.
        const cause = errors.find((e) => e.index === index)?.cause;
        if (!(cause instanceof RunspaceBrokenError)) expect(cause).toMatchObject({ message: `item ${index} fails` });
      }
      for (const index of killers) expect(errors.find((e) => e.index === index)?.cause).toBeInstanceOf(RunspaceBrokenError);
      for (const error of errors) {
        expect(error).toBeInstanceOf(ParallelItemError);
        // Items only fail because they threw, or because their runspace died under them.
        if (!failing.includes(error.index)) expect(error.cause).toBeInstanceOf(RunspaceBrokenError);
      }
      if (ordered) expect(outputs).toEqual([...outputs].sort((a, b) => a - b));
    },
  ), { numRuns: 60 });
});
