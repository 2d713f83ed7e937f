import { describe, expect, test } from 'vitest';
import { ModuleExportError } from 'runspaces';
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
});
