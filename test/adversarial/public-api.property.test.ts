import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AutoResetEvent,
  Barrier,
  CountdownEvent,
  ManualResetEvent,
  Mutex,
  ReaderWriterLock,
  RunspacePool,
  RunspacesError,
  Semaphore,
} from 'runspaces';

/**
 * Hostile but plausible input at every public entry point: each call
 * resolves, or rejects (or, for the synchronous APIs, throws) with one of the
 * library's typed errors; no async API throws synchronously; nothing is left
 * as an unhandled rejection; and the pool still answers afterwards.
 */

const throwingGetter = (depth: number): unknown => {
  let value: unknown = Object.defineProperty({}, 'x', { enumerable: true, get: () => { throw new Error('getter says no'); } });
  for (let i = 0; i < depth; i++) value = { nested: value };
  return value;
};
const throwingProxy = (): unknown => new Proxy({}, {
  get: () => { throw new Error('get trap'); },
  ownKeys: () => { throw new Error('ownKeys trap'); },
  getPrototypeOf: () => { throw new Error('getPrototypeOf trap'); },
  has: () => { throw new Error('has trap'); },
});
const cycle = (): unknown => {
  const a: Record<string, unknown> = { name: 'a' };
  a.self = a;
  return a;
};
const deep = (depth: number): unknown => {
  let value: unknown = { leaf: Symbol('x') };
  for (let i = 0; i < depth; i++) value = { next: value };
  return value;
};

/**
 * Values a caller might pass by mistake, or an attacker on purpose. Each is
 * generated as a recipe and made only inside the property: fast-check itself
 * inspects generated values, and a Proxy whose traps throw would break it.
 */
interface Recipe {
  readonly label: string;
  make(): unknown;
}
const recipe = (label: string, make: () => unknown): Recipe => ({ label, make, toString: () => label } as Recipe);
const hostile: fc.Arbitrary<Recipe> = fc.oneof(
  fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true })
    .map((value) => recipe(`anything ${fc.stringify(value)}`, () => value)),
  fc.constantFrom(NaN, Infinity, -Infinity, -0, -1, 2 ** 31, 2 ** 53, Number.MAX_VALUE, Number.MIN_VALUE, '', '5', null, undefined, true, 0n)
    .map((value) => recipe(`constant ${String(value)}`, () => value)),
  fc.constantFrom<[string, () => unknown]>(
    ['symbol', () => Symbol('s')], ['function', () => () => 1], ['async function', () => async () => 1], ['class', () => class Foo {}],
    ['promise', () => Promise.resolve(1)], ['WeakMap', () => new WeakMap()], ['WeakRef', () => new WeakRef({})], ['AbortSignal', () => new AbortController().signal],
  ).map(([label, make]) => recipe(label, make)),
  fc.integer({ min: 0, max: 6 }).map((depth) => recipe(`throwing getter at depth ${depth}`, () => throwingGetter(depth))),
  fc.constant(recipe('Proxy with throwing traps', throwingProxy)),
  fc.constant(recipe('cycle', cycle)),
  fc.integer({ min: 1, max: 20_000 }).map((depth) => recipe(`symbol ${depth} levels deep`, () => deep(depth))),
  fc.integer({ min: 1, max: 2_000_000 }).map((n) => recipe(`string of ${n}`, () => 'x'.repeat(n))),
);
const hostileOptions: fc.Arbitrary<Recipe> = fc.oneof(
  hostile,
  fc.record({ args: hostile, using: hostile, timeout: hostile, signal: hostile, transfer: hostile, baseUrl: hostile, onRecord: hostile }, { requiredKeys: [] })
    .map((fields) => recipe(`options {${Object.keys(fields).join(', ')}}`, () => Object.fromEntries(Object.entries(fields).map(([key, r]) => [key, (r as Recipe).make()])))),
  fc.constant(recipe('options with a throwing getter', () => Object.defineProperty({}, 'args', { enumerable: true, get: () => { throw new Error('options getter'); } }))),
);

const isTyped = (error: unknown): boolean => error instanceof RunspacesError;

let pool: RunspacePool;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 2 });
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await pool.close();
});

/** Runs an async API: it must return a promise (never throw), which settles, typed when it rejects. */
async function settlesTyped(call: () => unknown): Promise<void> {
  let returned: unknown;
  try {
    returned = call();
  } catch (error) {
    throw new Error(`threw synchronously instead of rejecting: ${String(error)}`);
  }
  expect(returned).toBeInstanceOf(Promise);
  try {
    await Promise.race([returned, new Promise((_, reject) => setTimeout(() => reject(new Error('did not settle within 10 s')), 10_000))]);
  } catch (error) {
    if (!isTyped(error)) throw new Error(`rejected with an untyped error: ${String((error as Error)?.stack ?? error)}`);
  }
}

/** Runs a synchronous API: it returns, or throws a typed error. */
function returnsOrThrowsTyped(call: () => unknown): unknown {
  try {
    return call();
  } catch (error) {
    if (!isTyped(error)) throw new Error(`threw an untyped error: ${String((error as Error)?.stack ?? error)}`);
    return undefined;
  }
}

describe('every public entry point under hostile input', () => {
  test('pool.invoke: any args, using, options or function settle with a typed error or a result', async () => {
    await fc.assert(fc.asyncProperty(hostile, hostileOptions, async (valueRecipe, optionsRecipe) => {
      const value = valueRecipe.make();
      const options = optionsRecipe.make();
      await settlesTyped(() => pool.invoke((_ctx, v: unknown) => typeof v, { args: [value] }));
      await settlesTyped(() => pool.invoke(() => 1, { using: { value } } as never));
      await settlesTyped(() => pool.invoke(() => 1, options as never));
      await settlesTyped(() => pool.invoke(value as never));
    }), { numRuns: 150 });
    expect(await pool.invoke(() => 'still answering', { timeout: 5_000 })).toBe('still answering');
  });

  test('pool.acquire, setMax/MinRunspaces and job.wait take any options', async () => {
    await fc.assert(fc.asyncProperty(hostile, async (valueRecipe) => {
      const value = valueRecipe.make();
      await settlesTyped(async () => {
        const runspace = await pool.acquire(value as never);
        runspace.release();
      });
      returnsOrThrowsTyped(() => pool.setMaxRunspaces(value as never));
      returnsOrThrowsTyped(() => pool.setMinRunspaces(value as never));
      const job = pool.startThreadJob(() => 1);
      await settlesTyped(() => job.wait(value as never));
      await job.wait();
    }), { numRuns: 100 });
    pool.setMaxRunspaces(2);
    pool.setMinRunspaces(1);
    expect(await pool.invoke(() => 'still answering', { timeout: 5_000 })).toBe('still answering');
  });

  test('forEachParallel and startThreadJob: any input, items and options end typed, never hang', async () => {
    await fc.assert(fc.asyncProperty(hostile, hostile, hostileOptions, async (inputRecipe, itemRecipe, optionsRecipe) => {
      const [input, item, options] = [inputRecipe.make(), itemRecipe.make(), optionsRecipe.make()];
      await settlesTyped(async () => {
        const loop = returnsOrThrowsTyped(() => pool.forEachParallel(input as never, (x: unknown) => typeof x, options as never));
        if (loop !== undefined) await (loop as { toArray(): Promise<unknown> }).toArray();
      });
      await settlesTyped(async () => {
        const loop = pool.forEachParallel([1, item, 3], (x: unknown) => typeof x);
        const outputs = await loop.toArray();
        expect(outputs.length + loop.errors.length).toBe(3);
        for (const error of loop.errors) expect(isTyped(error.cause)).toBe(true);
      });
      await settlesTyped(async () => {
        const job = returnsOrThrowsTyped(() => pool.startThreadJob((_ctx, v: unknown) => typeof v, options as never));
        if (job !== undefined) await (job as { wait(): Promise<boolean> }).wait();
      });
    }), { numRuns: 100 });
    expect(await pool.forEachParallel([1, 2], (n: number) => n * 2, { ordered: true }).toArray()).toEqual([2, 4]);
  });

  test('synchronization primitives: constructors, names and waits take any value', async () => {
    await fc.assert(fc.asyncProperty(hostile, hostile, async (aRecipe, bRecipe) => {
      const [a, b] = [aRecipe.make(), bRecipe.make()];
      returnsOrThrowsTyped(() => new Semaphore(a as never, b as never));
      returnsOrThrowsTyped(() => new CountdownEvent(a as never));
      returnsOrThrowsTyped(() => new Barrier(a as never));
      returnsOrThrowsTyped(() => Mutex.open(a as never));
      returnsOrThrowsTyped(() => Semaphore.open(a as never, 1, 1));
      returnsOrThrowsTyped(() => ManualResetEvent.open(a as never));
      const mutex = new Mutex();
      await settlesTyped(async () => {
        if (await mutex.acquire(a as never)) mutex.releaseMutex();
      });
      await settlesTyped(() => new AutoResetEvent(true).waitAsync(a as never));
      await settlesTyped(() => new ReaderWriterLock().acquireRead(b as never));
    }), { numRuns: 150 });
  });

  test('no call above left an unhandled rejection', () => {
    expect(unhandled).toEqual([]);
  });
});
