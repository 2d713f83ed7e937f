import { expectTypeOf, test } from 'vitest';
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
test('Remote<T> has the methods of T returning promises, and no fields', () => {
  expectTypeOf<Remote<Gauge>['read']>().toEqualTypeOf<(scale: number) => Promise<number>>();
  expectTypeOf<Remote<Gauge>['later']>().toEqualTypeOf<() => Promise<string>>();
  const remote = {} as Remote<Gauge>;
  // @ts-expect-error -- fields are not on a proxy; read them with getRemoteProperty
  void remote.level;
  expectTypeOf(getRemoteProperty(remote, 'level')).toEqualTypeOf<Promise<number>>();
  expectTypeOf(setRemoteProperty(remote, 'level', 2)).toEqualTypeOf<Promise<void>>();
  // @ts-expect-error -- the value must have the field's type
  void setRemoteProperty(remote, 'level', 'high').catch(() => undefined);
  expectTypeOf(runspaceAffinity(Gauge, { module: import.meta.url })).toEqualTypeOf<typeof Gauge>();
});
