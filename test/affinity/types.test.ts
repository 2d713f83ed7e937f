import { expect, expectTypeOf, test } from 'vitest';
import { getRemoteProperty, runspaceAffinity, setRemoteProperty, type Remote } from 'runspaces';

class Gauge {
  level = 1;
  read(scale: number): number {
    return this.level * scale;
  }
  async later(): Promise<string> {
    return 'x';
  }
}

// Checked by `tsc -p test/tsconfig.json` (part of npm test).
test('Remote<T> has the methods of T returning promises, and no fields', async () => {
  expectTypeOf<Remote<Gauge>['read']>().toEqualTypeOf<(scale: number) => Promise<number>>();
  expectTypeOf<Remote<Gauge>['later']>().toEqualTypeOf<() => Promise<string>>();
  const remote = {} as Remote<Gauge>;
  // @ts-expect-error -- fields are not on a proxy; read them with getRemoteProperty
  void remote.level;
  // `remote` is no real proxy: the calls reject, and only their types are checked here.
  const read = getRemoteProperty(remote, 'level');
  expectTypeOf(read).toEqualTypeOf<Promise<number>>();
  const written = setRemoteProperty(remote, 'level', 2);
  expectTypeOf(written).toEqualTypeOf<Promise<void>>();
  // @ts-expect-error -- the value must have the field's type
  const wrong = setRemoteProperty(remote, 'level', 'high');
  await expect(Promise.all([read, written, wrong])).rejects.toThrow(TypeError);
  expectTypeOf(runspaceAffinity(Gauge, { module: import.meta.url })).toEqualTypeOf<typeof Gauge>();
});
