import { expectTypeOf, test } from 'vitest';
import { RunspacePool, type Runspace, type PoolStats } from 'runspaces';

// These assertions are checked by `tsc -p test/tsconfig.json` (part of npm test):
// an @ts-expect-error that stops erroring fails the build.
test('invoke infers argument, using and result types from the script block', async () => {
  await using pool = await RunspacePool.open({ maxRunspaces: 1 });
  const sum = pool.invoke((ctx, a: number, b: number) => a + b, { args: [1, 2] });
  expectTypeOf(sum).toEqualTypeOf<Promise<number>>();
  const awaited = pool.invoke(async () => 'text');
  expectTypeOf(awaited).toEqualTypeOf<Promise<string>>();
  const scaled = pool.invoke((ctx) => ctx.using.scale * 2, { using: { scale: 3 } });
  expectTypeOf(scaled).toEqualTypeOf<Promise<number>>();
  // @ts-expect-error -- args must match the script block's parameters
  void pool.invoke((ctx, a: number) => a, { args: ['not a number'] }).catch(() => undefined);
  // @ts-expect-error -- a module target needs a module
  void pool.invoke({ export: 'x' }).catch(() => undefined);
  expectTypeOf(pool.acquire).returns.toEqualTypeOf<Promise<Runspace>>();
  expectTypeOf(pool.stats()).toEqualTypeOf<PoolStats>();
  await sum;
  await awaited;
  await scaled;
});
