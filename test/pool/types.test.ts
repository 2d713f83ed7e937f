import { expect, expectTypeOf, test } from 'vitest';
import { RunspacePool, type JobContext, type ParallelJob, type ParallelLoop, type PoolStats, type Runspace, type ThreadJob } from 'runspaces';

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
  // @ts-expect-error -- a script block that declares parameters needs args (it would run with undefined)
  void pool.invoke((ctx, a: number, b: number) => a + b).catch(() => undefined);
  // @ts-expect-error -- the same through options without args
  void pool.invoke((ctx, a: number) => a, { timeout: 5 }).catch(() => undefined);
  // Optional parameters need no args.
  void pool.invoke((ctx, a?: number) => a ?? 0).catch(() => undefined);
  // @ts-expect-error -- a module target needs a module
  void pool.invoke({ export: 'x' }).catch(() => undefined);
  expectTypeOf(pool.acquire).returns.toEqualTypeOf<Promise<Runspace>>();
  expectTypeOf(pool.stats()).toEqualTypeOf<PoolStats>();
  await sum;
  await awaited;
  await scaled;
});

test('forEachParallel and startThreadJob infer items, using values and outputs', async () => {
  await using pool = await RunspacePool.open({ maxRunspaces: 1 });
  const loop = pool.forEachParallel([1, 2], (item, ctx) => `${item * ctx.using.scale}`, { using: { scale: 2 } });
  expectTypeOf(loop).toEqualTypeOf<ParallelLoop<string>>();
  const lengths = pool.forEachParallel(['a'], async (item) => item.length).toArray();
  expectTypeOf(lengths).toEqualTypeOf<Promise<number[]>>();
  const job = pool.forEachParallel([1], (item) => item, { asJob: true });
  expectTypeOf(job).toEqualTypeOf<ParallelJob<number>>();
  // @ts-expect-error -- a loop run as a job has no timeout
  expect(() => pool.forEachParallel([1], (item: number) => item, { asJob: true, timeout: 5 })).toThrow();
  const threadJob = pool.startThreadJob((ctx, a: number) => a + ctx.input.length, { args: [1] });
  expectTypeOf(threadJob).toEqualTypeOf<ThreadJob<number>>();
  // @ts-expect-error -- args must match the job's parameters
  void pool.startThreadJob((ctx: JobContext, a: number) => a, { args: ['x'] }).wait();
  await Promise.all([loop.toArray(), lengths, job.wait(), threadJob.wait()]);
});
