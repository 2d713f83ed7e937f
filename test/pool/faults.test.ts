import { describe, expect, test } from 'vitest';
import { RunspaceBrokenError, RunspacePool, UncloneableValueError, UsingFunctionError, InvalidArgumentError } from 'runspaces';

describe('a runspace that dies', () => {
  test('an uncaught exception breaks only its work; the pool replaces it and keeps serving', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    const before = await pool.invoke((ctx) => ctx.runspaceId);
    const error = (await pool.invoke(() => new Promise(() => {
      setTimeout(() => { throw new Error('thrown at top level'); });
    })).catch((e: unknown) => e)) as RunspaceBrokenError;
    expect(error).toBeInstanceOf(RunspaceBrokenError);
    expect(error).toMatchObject({ code: 'ERR_RUNSPACE_BROKEN', runspaceId: before, exitCode: 1 });
    expect(error.reason).toContain('thrown at top level');
    const after = await pool.invoke((ctx) => ctx.runspaceId);
    expect(after).not.toBe(before);
  });

  test('process.exit in a runspace reports its exit code', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const error = (await pool.invoke(() => process.exit(7)).catch((e: unknown) => e)) as RunspaceBrokenError;
    expect(error).toMatchObject({ name: 'RunspaceBrokenError', exitCode: 7 });
    expect(await pool.invoke(() => 'serving')).toBe('serving');
  });

  test('running out of memory breaks the runspace with a clear reason', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1, resourceLimits: { maxOldGenerationSizeMb: 16 } });
    const error = await pool.invoke(() => {
      const hoard: number[][] = [];
      for (;;) hoard.push(new Array(100_000).fill(1));
    }).catch((e: unknown) => e as RunspaceBrokenError);
    expect(error).toBeInstanceOf(RunspaceBrokenError);
    expect(error.reason).toBe('out of memory');
    expect(await pool.invoke(() => 'serving')).toBe('serving');
  });

  test('no promise is left pending when a runspace dies under load, and unstarted work runs elsewhere', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
    const n = 3000;
    const outcomes = await Promise.allSettled(Array.from({ length: n }, (_, i) => pool.invoke((ctx, index: number) => {
      if (index === 1500) process.exit(3);
      return index * 2;
    }, { args: [i] })));
    expect(outcomes).toHaveLength(n);
    const broken = outcomes.filter((o) => o.status === 'rejected');
    for (const o of broken) expect((o as PromiseRejectedResult).reason).toBeInstanceOf(RunspaceBrokenError);
    expect(outcomes[1500]!.status).toBe('rejected');
    outcomes.forEach((o, i) => { if (o.status === 'fulfilled') expect(o.value).toBe(i * 2); });
    // Only work the dead runspace had started is lost: a small, bounded batch.
    expect(broken.length).toBeLessThan(300);
    expect(pool.stats().runspaces).toBe(2);
  });

  test('work pinned to an acquired runspace that dies rejects, and later calls on it reject too', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const rs = await pool.acquire();
    const dying = rs.invoke(() => process.exit(1));
    const behind = rs.invoke(() => 'never runs');
    await expect(dying).rejects.toBeInstanceOf(RunspaceBrokenError);
    await expect(behind).rejects.toBeInstanceOf(RunspaceBrokenError);
    await expect(rs.invoke(() => 1)).rejects.toBeInstanceOf(RunspaceBrokenError);
    rs.release();
    expect(await pool.invoke(() => 'pool still serves')).toBe('pool still serves');
  });
});

describe('values that cannot cross', () => {
  test('an uncloneable using value is named by its path', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const error = (await pool.invoke(() => 1, { using: { config: { socket: new WeakMap() } } }).catch((e: unknown) => e)) as UncloneableValueError;
    expect(error).toBeInstanceOf(UncloneableValueError);
    expect(error.path).toBe('using.config.socket');
    expect(await pool.invoke(() => 'still serving')).toBe('still serving');
  });

  test('a function in using is refused, as PowerShell refuses script blocks in $using:', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    await expect(pool.invoke(() => 1, { using: { helper: () => 2 } })).rejects.toMatchObject({ name: 'UsingFunctionError', path: 'using.helper' });
    await expect(pool.invoke(() => 1, { using: { nested: { helper: () => 2 } } })).rejects.toBeInstanceOf(UsingFunctionError);
  });

  test('an uncloneable argument is named by its index, and other calls in its batch still run', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    const calls = Array.from({ length: 50 }, (_, i) => pool.invoke((ctx, v: unknown) => typeof v, { args: [i === 25 ? Symbol('x') : i] }));
    const outcomes = await Promise.allSettled(calls);
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(1);
    expect((outcomes[25] as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_UNCLONEABLE_VALUE', path: 'args[0]' });
  });

  test('a result that cannot come back is an UncloneableValueError, and the runspace survives', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const id = await pool.invoke((ctx) => ctx.runspaceId);
    await expect(pool.invoke(() => ({ fn: () => 1 }))).rejects.toMatchObject({ code: 'ERR_UNCLONEABLE_VALUE', path: 'the result.fn' });
    expect(await pool.invoke((ctx) => ctx.runspaceId)).toBe(id);
  });

  test.each([
    [{ args: 'not an array' }, 'args'],
    [{ using: [1, 2] }, 'using'],
    [{ timeout: -1 }, 'timeout'],
    [{ signal: {} }, 'signal'],
  ])('invalid invoke option %o is an InvalidArgumentError naming %s', async (options, name) => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1, minRunspaces: 0 });
    const error = (await pool.invoke(() => 1, options as never).catch((e: unknown) => e)) as InvalidArgumentError;
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.argument).toBe(name);
    expect(pool.stats().runspaces).toBe(0);
  });
});
