import { describe, expect, test } from 'vitest';
import { InvalidArgumentError, RunspacePool } from 'runspaces';

describe('absurd sizes', () => {
  test('a count above 1024 runspaces is refused with an InvalidArgumentError, and the pool is unchanged', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 2 });
    expect(() => pool.setMaxRunspaces(2 ** 53)).toThrow(InvalidArgumentError);
    expect(() => pool.setMaxRunspaces(1025)).toThrow(/at most 1024/);
    expect(pool.getMaxRunspaces()).toBe(2);
    expect(pool.setMinRunspaces(2 ** 53)).toBe(false);
    expect(() => new RunspacePool({ maxRunspaces: 1e6, minRunspaces: 1e6 })).toThrow(InvalidArgumentError);
    expect(await pool.invoke(() => 'still here')).toBe('still here');
  });

  test('growing to many runspaces at once never blocks the event loop: they open a few per turn', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 0, maxRunspaces: 40 });
    let opened = 0;
    pool.on('runspaceOpened', () => opened++);
    expect(pool.setMinRunspaces(40)).toBe(true);
    // Only the first turn's share started synchronously.
    expect(pool.stats().runspaces).toBeLessThanOrEqual(16);
    await new Promise<void>((resolve) => {
      const check = (): void => (opened >= 40 ? resolve() : void setTimeout(check, 10));
      check();
    });
    expect(pool.stats().runspaces).toBe(40);
  });
});
