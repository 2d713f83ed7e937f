import { describe, expect, test } from 'vitest';
import { RunspaceBrokenError, RunspacePool, TimeoutError } from 'runspaces';
// The codec is tested as a module of its own: it revives the error classes of its own copy of errors.js.
import { ModuleExportError } from '../../dist/errors.js';
// Internal module, tested directly: the codec is the contract both sides of a thread share.
import { deserializeError, serializeError } from '../../dist/protocol/error-codec.js';

const roundTrip = (error: unknown) => deserializeError(structuredClone(serializeError(error)));

describe('error codec', () => {
  test('a library error comes back as its own class with its fields', () => {
    const back = roundTrip(new ModuleExportError('m.js', 'run', 'no export')) as ModuleExportError;
    expect(back).toBeInstanceOf(ModuleExportError);
    expect(back).toMatchObject({ code: 'ERR_MODULE_EXPORT', module: 'm.js', exportName: 'run', message: 'no export' });
  });

  test('uncloneable extra properties are kept as text instead of failing the transfer', () => {
    const error = Object.assign(new Error('x'), { handle: () => 1 });
    expect((roundTrip(error) as { handle: unknown }).handle).toContain('=>');
  });

  test('deep cause chains are cut rather than recursing without end', () => {
    let error = new Error('0');
    for (let i = 1; i < 50; i++) error = new Error(String(i), { cause: error });
    let depth = 0;
    for (let e: unknown = roundTrip(error); e instanceof Error; e = e.cause) depth++;
    expect(depth).toBeLessThan(12);
  });

  test('an error that only carries a library name stays a plain Error with its name and message', () => {
    const impostor = Object.assign(new Error('I am not really broken'), { name: 'RunspaceBrokenError' });
    const back = roundTrip(impostor) as Error;
    expect(back).not.toBeInstanceOf(RunspaceBrokenError);
    expect(back).toBeInstanceOf(Error);
    expect(back.name).toBe('RunspaceBrokenError');
    expect(back.message).toBe('I am not really broken');
  });

  test("a script's own AbortSignal.timeout() is not the library's TimeoutError; the call's own timeout is", async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    const inner = await pool.invoke(() => new Promise((_, reject) => {
      const signal = AbortSignal.timeout(5);
      signal.addEventListener('abort', () => reject(signal.reason));
    })).catch((error: unknown) => error);
    expect(inner).not.toBeInstanceOf(TimeoutError);
    expect((inner as Error).name).toBe('TimeoutError');
    expect((inner as Error).message).toMatch(/timeout/i);
    const own = await pool.invoke(() => new Promise((resolve) => setTimeout(resolve, 2_000)), { timeout: 10 }).catch((error: unknown) => error);
    expect(own).toBeInstanceOf(TimeoutError);
    expect((own as TimeoutError).code).toBe('ERR_TIMEOUT');
  });
});
