import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RunspacePool, UncloneableValueError } from 'runspaces';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 2 });
});
afterAll(() => pool.close());

const throwingGetterDeep = () => ({ a: { b: { c: { get x(): never { throw new Error('getter says no'); } } } } });

describe('values that fight back', () => {
  test('a throwing getter 4 levels deep in args rejects (never throws) with the path, twice, and the pool still answers', async () => {
    for (let attempt = 0; attempt < 2; attempt++) {
      let call!: Promise<unknown>;
      expect(() => {
        call = pool.invoke((_ctx, _value: unknown) => 1, { args: [throwingGetterDeep()] });
      }).not.toThrow();
      const error = await call.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UncloneableValueError);
      expect((error as UncloneableValueError).path).toBe('args[0].a.b.c.x');
      expect((error as UncloneableValueError).message).toMatch(/could not be inspected \(getter says no\)/);
    }
    expect(await pool.invoke(() => 'ok', { timeout: 5_000 })).toBe('ok');
  });

  test('a throwing getter at the top of using, and a Proxy whose traps throw, reject with typed errors', async () => {
    const getter = { get token(): never { throw new Error('no token'); } };
    await expect(pool.invoke(() => 1, { using: getter })).rejects.toMatchObject({ name: 'UncloneableValueError', path: 'using.token' });
    const trap = new Proxy({}, { ownKeys: () => { throw new Error('trap'); } });
    await expect(pool.invoke(() => 1, { using: trap })).rejects.toBeInstanceOf(UncloneableValueError);
    await expect(pool.invoke((_ctx, _value: unknown) => 1, { args: [{ deep: { deeper: trap } }] })).rejects.toMatchObject({ path: 'args[0].deep.deeper' });
    expect(await pool.invoke(() => 'ok')).toBe('ok');
  });

  // Found by the adversarial suite (seed 1149519733): Node's own TypeError escaped untyped.
  test('a transfer list that is not an array rejects with InvalidArgumentError naming transfer', async () => {
    for (const transfer of [Number.NaN, 'buffer', { length: 1 }, new ArrayBuffer(8)]) {
      await expect(pool.invoke(() => 1, { transfer: transfer as never })).rejects.toMatchObject({ name: 'InvalidArgumentError', argument: 'transfer' });
    }
    const buffer = new ArrayBuffer(8);
    expect(await pool.invoke((_ctx, b: ArrayBuffer) => b.byteLength, { args: [buffer], transfer: [buffer] })).toBe(8);
  });

  // Found by the adversarial suite (seed 507544862): `instanceof URL` on a Proxy whose traps throw escaped untyped.
  test('a baseUrl whose Proxy traps throw is an InvalidArgumentError naming baseUrl, for calls and loops', async () => {
    const trap = new Proxy({}, { getPrototypeOf: () => { throw new Error('getPrototypeOf trap'); } });
    await expect(pool.invoke(() => 1, { baseUrl: trap as never })).rejects.toMatchObject({ name: 'InvalidArgumentError', argument: 'baseUrl' });
    expect(() => pool.forEachParallel([1], (n: number) => n, { baseUrl: trap as never })).toThrow(/baseUrl/);
  });

  test('a harmless Proxy is named as a Proxy, which cannot cross', async () => {
    const proxy = new Proxy({ a: 1 }, {});
    const error = await pool.invoke((_ctx, _value: unknown) => 1, { args: [[1, proxy]] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UncloneableValueError);
    expect((error as UncloneableValueError).path).toBe('args[0][1]');
    expect((error as Error).message).toMatch(/Proxy/);
  });

  test('an uncloneable value 50,000 levels deep is found without overflowing the stack', async () => {
    let value: object = { leaf: Symbol('x') };
    for (let i = 0; i < 50_000; i++) value = { next: value };
    const error = await pool.invoke((_ctx, _value: unknown) => 1, { args: [value] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UncloneableValueError);
    const path = (error as UncloneableValueError).path;
    expect(path.startsWith('args[0].next.next')).toBe(true);
    expect(path.endsWith('.leaf')).toBe(true);
    expect(path.split('.next').length - 1).toBe(50_000);
  });

  test('a loop item with a throwing getter fails alone; the other items run', async () => {
    const items = [1, { get bad(): never { throw new Error('item getter'); } }, 3];
    const loop = pool.forEachParallel(items, (item: unknown) => (typeof item === 'number' ? item * 2 : 'never'), { ordered: true, errorAction: 'continue' });
    expect(await loop.toArray()).toEqual([2, 6]);
    expect(loop.errors).toHaveLength(1);
    expect(loop.errors[0]!.index).toBe(1);
    expect(loop.errors[0]!.cause).toBeInstanceOf(UncloneableValueError);
  });
});
