import { describe, expect, test } from 'vitest';
import { InvalidArgumentError, RunspacePool } from 'runspaces';

describe('per-pool worker settings (env, argv, execArgv)', () => {
  test('each runspace gets the pool\'s env, argv and Node flags', async () => {
    await using pool = await RunspacePool.open({
      minRunspaces: 2,
      maxRunspaces: 2,
      env: { RUNSPACES_TEST_SETTING: 'from the pool' },
      argv: ['--mode', 'batch'],
      execArgv: ['--enable-source-maps', '--no-warnings'],
    });
    const seen = await Promise.all([0, 1].map(() => pool.invoke(() => ({
      env: process.env.RUNSPACES_TEST_SETTING,
      path: process.env.PATH,
      argv: process.argv.slice(2),
      execArgv: process.execArgv,
    }))));
    for (const runspace of seen) {
      expect(runspace.env).toBe('from the pool');
      expect(runspace.path).toBeUndefined();
      expect(runspace.argv).toEqual(['--mode', 'batch']);
      expect(runspace.execArgv).toEqual(['--enable-source-maps', '--no-warnings']);
    }
  });

  test('by default a runspace sees this process\'s environment', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    expect(await pool.invoke(() => typeof process.env.PATH)).toBe('string');
  });

  test.each([
    [{ env: { A: 1 } }, 'env.A'],
    [{ env: 'A=1' }, 'env'],
    [{ argv: 'x' }, 'argv'],
    [{ argv: [1] }, 'argv[0]'],
    [{ execArgv: ['--max-old-space-size=64'] }, 'execArgv'],
    [{ execArgv: [42] }, 'execArgv[0]'],
  ])('%o is refused when the pool is created, naming %s', (options, name) => {
    let thrown: unknown;
    try {
      new RunspacePool(options as never);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidArgumentError);
    expect((thrown as InvalidArgumentError).argument).toBe(name);
  });
});
