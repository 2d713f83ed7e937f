import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ModuleExportError, RelativeImportError, RunspacePool, ScriptBlockError, type StreamRecord } from 'runspaces';
import * as runspaces from 'runspaces';
import { usesMissingImport, usesRelativeImport } from './../fixtures/script-blocks.js';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
});
afterAll(() => pool.close());

describe('script blocks', () => {
  test('a script block runs in a runspace with ctx first, then its args', async () => {
    const result = await pool.invoke((ctx, a: number, b: string) => ({ sum: a + 1, b, id: ctx.runspaceId }), { args: [41, 'x'] });
    expect(result.sum).toBe(42);
    expect(result.b).toBe('x');
    expect(result.id).toBeGreaterThan(0);
  });

  test('async script blocks are awaited', async () => {
    expect(await pool.invoke(async (ctx, ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return 'done';
    }, { args: [1] })).toBe('done');
  });

  test('no closure crosses: a captured variable is refused before anything runs, named', async () => {
    const secret = 'caller-only';
    await expect(pool.invoke(() => secret)).rejects.toMatchObject({ name: 'ScriptBlockClosureError', identifiers: ['secret'] });
  });

  test('using values are evaluated once at the call and cloned', async () => {
    const settings = { scale: 2, tags: ['a'] };
    const result = await pool.invoke((ctx) => {
      const using = ctx.using as { scale: number; tags: string[] };
      using.tags.push('changed in runspace');
      return using.scale * 21;
    }, { using: { ...settings } });
    expect(result).toBe(42);
    expect(settings.tags).toEqual(['a']);
  });

  test('method shorthand and function expressions are script blocks too', async () => {
    const holder = { double(_ctx: unknown, n: number) { return n * 2; } };
    expect(await pool.invoke(holder.double, { args: [4] })).toBe(8);
    expect(await pool.invoke(function named(_ctx, n: number) { return n + 1; }, { args: [1] })).toBe(2);
  });

  test('a native or bound function is refused with ScriptBlockError', async () => {
    await expect(pool.invoke(Math.max as never)).rejects.toBeInstanceOf(ScriptBlockError);
    await expect(pool.invoke(((ctx: unknown) => ctx).bind(null))).rejects.toMatchObject({ code: 'ERR_SCRIPT_BLOCK' });
  });

  test('inline arrows with the same source share one compiled script block', async () => {
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => pool.invoke((ctx, n: number) => n * 3, { args: [i] })));
    expect(results).toEqual(Array.from({ length: 1000 }, (_, i) => i * 3));
  });
});

describe('session state', () => {
  test('session variables persist between calls in one runspace and never leak to another', async () => {
    const [a, b] = [await pool.acquire(), await pool.acquire()];
    try {
      await a.invoke((ctx) => { ctx.session.set('name', 'A'); });
      await b.invoke((ctx) => { ctx.session.set('name', 'B'); });
      expect(await a.invoke((ctx) => ctx.session.get('name'))).toBe('A');
      expect(await b.invoke((ctx) => ctx.session.get('name'))).toBe('B');
      expect(await a.invoke((ctx) => [ctx.session.has('name'), ctx.session.keys(), ctx.session.delete('name'), ctx.session.has('name')]))
        .toEqual([true, ['name'], true, false]);
    } finally {
      a.release();
      b.release();
    }
  });

  test('every call counted in some runspace session: no lost update over 20k calls', async () => {
    await using counting = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
    const n = 20_000;
    await Promise.all(Array.from({ length: n }, () => counting.invoke((ctx) => {
      ctx.session.set('count', (ctx.session.get<number>('count') ?? 0) + 1);
    })));
    const seen = new Map<number, number>();
    for (let i = 0; seen.size < 2 && i < 100; i++) {
      const rs = await counting.acquire();
      seen.set(rs.id, (await rs.getVariable<number>('count')) ?? 0);
      if (seen.size < 2) {
        const other = await counting.acquire();
        seen.set(other.id, (await other.getVariable<number>('count')) ?? 0);
        other.release();
      }
      rs.release();
    }
    expect([...seen.values()].reduce((x, y) => x + y, 0)).toBe(n);
  });
});

describe('initial session state', () => {
  test('variables, modules and startup scripts reach every runspace', async () => {
    await using configured = await RunspacePool.open({
      minRunspaces: 2,
      maxRunspaces: 2,
      initialSessionState: {
        variables: { region: 'eu', limits: { max: 3 } },
        modules: [new URL('../fixtures/setup.js', import.meta.url)],
        startup: [(ctx) => { ctx.session.set('ready', `ready in ${ctx.runspaceId}`); }],
      },
    });
    const a = await configured.acquire();
    const b = await configured.acquire();
    const probe = (ctx: runspaces.RunspaceContext) => ({
      region: ctx.session.get('region'),
      limits: ctx.session.get('limits'),
      ready: ctx.session.get('ready'),
      greeting: ctx.modules[0]?.greeting,
      imports: (globalThis as { setupImportCount?: number }).setupImportCount,
      id: ctx.runspaceId,
    });
    for (const rs of [a, b]) {
      const seen = await rs.invoke(probe);
      expect(seen).toEqual({ region: 'eu', limits: { max: 3 }, ready: `ready in ${rs.id}`, greeting: 'hello from setup', imports: 1, id: rs.id });
    }
    a.release();
    b.release();
  });

  test('a failing module is reported and the runspace serves anyway when throwOnOpenError is false', async () => {
    const pool2 = new RunspacePool({
      minRunspaces: 1,
      maxRunspaces: 1,
      initialSessionState: { modules: [new URL('../fixtures/broken-module.js', import.meta.url)] },
    });
    const reported: Error[] = [];
    pool2.on('runspaceOpenError', (error) => reported.push(error));
    await pool2.open();
    expect(reported).toHaveLength(1);
    expect(reported[0]).toMatchObject({ code: 'ERR_RUNSPACE_OPEN' });
    expect(String((reported[0]!.cause as Error).message)).toContain('refuses to load');
    expect(await pool2.invoke(() => 'still serving')).toBe('still serving');
    await pool2.close();
  });

  test('a failing startup script breaks the pool when throwOnOpenError is true', async () => {
    const pool2 = new RunspacePool({
      minRunspaces: 1,
      maxRunspaces: 2,
      initialSessionState: { startup: [() => { throw new RangeError('bad startup'); }], throwOnOpenError: true },
    });
    await expect(pool2.open()).rejects.toMatchObject({ code: 'ERR_RUNSPACE_OPEN' });
    expect(pool2.state).toBe('Broken');
    await expect(pool2.invoke(() => 1)).rejects.toMatchObject({ code: 'ERR_POOL_STATE' });
    await pool2.close();
  });
});

describe('module functions', () => {
  const tasks = new URL('../fixtures/tasks.js', import.meta.url);

  test('an exported function of a real module runs with its closures and imports', async () => {
    const digest = await pool.invoke<string>({ module: tasks, export: 'digest' }, { args: ['abc'] });
    expect(digest).toMatch(/^[0-9a-f]{16}$/);
  });

  test('the default export is used when no export is named, with the same ctx', async () => {
    const rs = await pool.acquire();
    await rs.setVariable('region', 'us');
    expect(await rs.invoke<{ runspaceId: number; region: string }>({ module: tasks })).toEqual({ runspaceId: rs.id, region: 'us' });
    rs.release();
  });

  test('a module path relative to the calling file works', async () => {
    expect(await pool.invoke({ module: '../fixtures/tasks.js', export: 'digest' }, { args: ['abc'] })).toMatch(/^[0-9a-f]{16}$/);
  });

  test('a missing export or a non-function export is a ModuleExportError that lists the exports', async () => {
    await expect(pool.invoke({ module: tasks, export: 'nope' })).rejects.toBeInstanceOf(ModuleExportError);
    await expect(pool.invoke({ module: tasks, export: 'notAFunction' })).rejects.toThrow(/digest/);
  });
});

describe('imports inside script blocks', () => {
  test('a relative import resolves against the file that defined the script block', async () => {
    expect(await pool.invoke(usesRelativeImport, { args: [21] })).toBe(42);
  });

  test('a relative import that does not exist says how to fix it', async () => {
    const error = await pool.invoke(usesMissingImport).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RelativeImportError);
    expect((error as Error).message).toContain('baseUrl');
  });

  test('baseUrl overrides the file relative imports resolve against', async () => {
    // @ts-expect-error -- resolved inside the runspace, against baseUrl
    const fn = async (_ctx: unknown, n: number) => (await import('./helper.js')).double(n);
    expect(await pool.invoke(fn, { args: [5], baseUrl: new URL('../fixtures/x.js', import.meta.url) })).toBe(10);
  });

  test('a relative import written in a test file (rewritten by Vitest) still resolves', async () => {
    expect(await pool.invoke(async (_ctx, n: number) => (await import('../fixtures/helper.js')).double(n), { args: [8] })).toBe(16);
  });

  test("await import('runspaces') inside a script block gives this same library", async () => {
    const exported = await pool.invoke(async () => Object.keys(await import('runspaces')).sort());
    expect(exported).toEqual(Object.keys(runspaces).sort());
  });
});

describe('streams', () => {
  test('records of every stream reach onRecord in order, before the result', async () => {
    const records: StreamRecord[] = [];
    let resultSeenAfter = -1;
    const result = await pool.invoke((ctx) => {
      ctx.writeVerbose('starting');
      ctx.writeProgress({ activity: 'work', percentComplete: 50 });
      ctx.writeWarning('careful');
      ctx.writeDebug('details');
      ctx.writeInformation({ rows: 3 }, ['stats']);
      ctx.writeError(new TypeError('one row was bad'));
      return 'result';
    }, { onRecord: (record) => records.push(record) }).then((value) => {
      resultSeenAfter = records.length;
      return value;
    });
    expect(result).toBe('result');
    expect(resultSeenAfter).toBe(6);
    expect(records.map((r) => r.stream)).toEqual(['verbose', 'progress', 'warning', 'debug', 'information', 'error']);
    expect(records[1]).toMatchObject({ progress: { activity: 'work', percentComplete: 50 } });
    expect(records[4]).toMatchObject({ data: { rows: 3 }, tags: ['stats'] });
    const errorRecord = records[5] as Extract<StreamRecord, { stream: 'error' }>;
    expect(errorRecord.error).toBeInstanceOf(TypeError);
    expect(records.every((r) => typeof r.runspaceId === 'number' && typeof r.time === 'number')).toBe(true);
  });

  test("records of calls without onRecord go to the pool's record event", async () => {
    const seen: StreamRecord[] = [];
    const listener = (record: StreamRecord) => seen.push(record);
    pool.on('record', listener);
    await pool.invoke((ctx) => ctx.writeWarning('to the pool'));
    pool.off('record', listener);
    expect(seen).toMatchObject([{ stream: 'warning', message: 'to the pool' }]);
  });
});

describe('errors from runspaces', () => {
  test('name, message, stack, code and cause cross faithfully; built-in classes are kept', async () => {
    const error = await pool.invoke(() => {
      const inner = new RangeError('inner problem');
      const outer = new TypeError('outer problem', { cause: inner }) as TypeError & { code: string; detail: object };
      outer.code = 'E_OUTER';
      outer.detail = { row: 7 };
      throw outer;
    }).catch((e: unknown) => e as TypeError & { code: string; detail: object });
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe('outer problem');
    expect(error.code).toBe('E_OUTER');
    expect(error.detail).toEqual({ row: 7 });
    expect(error.stack).toContain('outer problem');
    expect(error.cause).toBeInstanceOf(RangeError);
    expect((error.cause as Error).message).toBe('inner problem');
  });

  test('a custom error class keeps its name; a thrown non-error keeps its value', async () => {
    const custom = await pool.invoke(() => {
      class QuotaError extends Error { override name = 'QuotaError'; }
      throw new QuotaError('over quota');
    }).catch((e: unknown) => e as Error);
    expect(custom.name).toBe('QuotaError');
    expect(custom.message).toBe('over quota');
    await expect(pool.invoke(() => { throw { reason: 'plain object' }; })).rejects.toEqual({ reason: 'plain object' });
  });

  test('AggregateError keeps its inner errors', async () => {
    const error = await pool.invoke(() => {
      throw new AggregateError([new Error('a'), new SyntaxError('b')], 'two failed');
    }).catch((e: unknown) => e as AggregateError);
    expect(error).toBeInstanceOf(AggregateError);
    expect(error.errors.map((e: Error) => e.message)).toEqual(['a', 'b']);
    expect(error.errors[1]).toBeInstanceOf(SyntaxError);
  });
});

describe('transfer', () => {
  test('transferred buffers move to the runspace instead of being copied', async () => {
    const buffer = new Uint8Array([1, 2, 3]).buffer;
    const sum = await pool.invoke((ctx, b: ArrayBuffer) => new Uint8Array(b).reduce((x, y) => x + y, 0), { args: [buffer], transfer: [buffer] });
    expect(sum).toBe(6);
    expect(buffer.byteLength).toBe(0);
  });
});
