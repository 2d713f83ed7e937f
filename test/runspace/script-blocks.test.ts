import { mkdirSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ParallelItemError, RunspacePool, ScriptBlockClosureError } from 'runspaces';
import { failing, failingItem } from '../fixtures/throwing-script.js';

// A browser global, absent in Node: only ever read through typeof in the script block below.
declare const window: unknown;

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 2 });
});
afterAll(() => pool.close());

const fixtures = new URL('../fixtures/', import.meta.url);
const generated = new URL('.generated/', fixtures);

/** What a user writes in TypeScript: a script block with a nested function and await, and one that captures a variable. */
const userSource = `
import type { RunspacePool } from 'runspaces';
export async function run(pool: RunspacePool): Promise<number> {
  return pool.invoke(async (_ctx, n: number) => {
    function double(x: number): number { return x * 2; }
    const pause = async (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    await pause(1);
    const { a, ...rest } = { a: 1, b: n };
    return double(rest.b) + a - 1;
  }, { args: [21] });
}
export async function captured(pool: RunspacePool): Promise<number> {
  const factor = 3;
  return pool.invoke((_ctx, n: number) => n * factor, { args: [2] });
}
`;

type Compiled = { run(pool: RunspacePool): Promise<number>; captured(pool: RunspacePool): Promise<number> };

async function compileWithTsc(target: ts.ScriptTarget, name: string): Promise<Compiled> {
  const { outputText } = ts.transpileModule(userSource, { compilerOptions: { target, module: ts.ModuleKind.ESNext } });
  mkdirSync(generated, { recursive: true });
  const file = new URL(`${name}.mjs`, generated);
  writeFileSync(file, outputText);
  return (await import(file.href)) as Compiled;
}

async function compileLikeTsx(): Promise<Compiled> {
  // tsx runs TypeScript through esbuild with keepNames, which adds __name(...) calls inside functions.
  const result = await build({ stdin: { contents: userSource, loader: 'ts' }, write: false, format: 'esm', target: 'node20', keepNames: true, bundle: false });
  mkdirSync(generated, { recursive: true });
  const file = new URL('tsx-like.mjs', generated);
  writeFileSync(file, result.outputFiles[0]!.text);
  return (await import(file.href)) as Compiled;
}

describe('script blocks as compilers emit them', () => {
  test('esbuild with keepNames (what tsx runs): nested named functions work; a captured variable is refused, named', async () => {
    const compiled = await compileLikeTsx();
    expect(await compiled.run(pool)).toBe(42);
    await expect(compiled.captured(pool)).rejects.toMatchObject({ name: 'ScriptBlockClosureError', identifiers: ['factor'] });
  });

  test.each([
    ['ES2015', ts.ScriptTarget.ES2015],
    ['ES2017', ts.ScriptTarget.ES2017],
    ['ES2022', ts.ScriptTarget.ES2022],
  ] as const)('tsc with target %s: async script blocks (with __awaiter below ES2017) work; a captured variable is refused', async (name, target) => {
    const compiled = await compileWithTsc(target, `tsc-${name}`);
    expect(await compiled.run(pool)).toBe(42);
    const error = await compiled.captured(pool).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScriptBlockClosureError);
    expect((error as ScriptBlockClosureError).identifiers).toEqual(['factor']);
    expect((error as ScriptBlockClosureError).location).toMatch(new RegExp(`tsc-${name}\\.mjs:\\d+:\\d+$`));
  });

  test('tsc for ES5: the helpers of an old target are named, with the fix', async () => {
    const compiled = await compileWithTsc(ts.ScriptTarget.ES5, 'tsc-ES5');
    const error = await compiled.run(pool).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScriptBlockClosureError);
    expect((error as Error).message).toMatch(/__generator/);
    expect((error as Error).message).toMatch(/ES2022/);
  });
});

describe('closures caught at the call site', () => {
  test('every outside name is listed, with where the script block was written and the ways out; typeof guards pass', async () => {
    const resize = (file: string): string => file;
    const width = 640;
    const error = await pool.invoke((_ctx, file: string) => (typeof window === 'undefined' ? resize(file) + width : ''), { args: ['a.png'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScriptBlockClosureError);
    expect((error as ScriptBlockClosureError).identifiers).toEqual(['resize', 'width']);
    expect((error as Error).message).toMatch(/using/);
    expect((error as Error).message).toMatch(/import\(/);
    expect((error as Error).message).toMatch(/module/);
  });

  test('a loop and a thread job refuse the same way before taking any input', async () => {
    let pulled = 0;
    function* input(): Generator<number> {
      for (;;) yield ++pulled;
    }
    const limit = 10;
    expect(() => pool.forEachParallel(input(), (n: number) => n < limit)).toThrow(ScriptBlockClosureError);
    expect(pulled).toBe(0);
    expect(() => pool.startThreadJob(() => limit)).toThrow(ScriptBlockClosureError);
  });
});

describe('stack frames in the file where the script block was written', () => {
  test("an error thrown by a script block points at the line that threw, in the user's file", async () => {
    const error = (await pool.invoke(failing, { args: [10] }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(RangeError);
    const top = error.stack!.split('\n')[1]!;
    expect(top).toMatch(/throwing-script\.js:5:\d+/);
    expect(error.stack).not.toMatch(/worker\.bundle\.js/);
  });

  test("a loop item's error points at its line too", async () => {
    const loop = pool.forEachParallel([1, 2, 3, 4], failingItem);
    await loop.toArray().catch(() => undefined);
    const error = loop.errors[0]!;
    expect(error).toBeInstanceOf(ParallelItemError);
    expect((error.cause as Error).stack!.split('\n')[1]).toMatch(/throwing-script\.js:10:\d+/);
  });
});

describe('a TypeScript program run with tsx', () => {
  test('nested named functions work, a captured variable is refused in the user file, a .ts import says what to do', async () => {
    const { execFile } = await import('node:child_process');
    const app = new URL('../fixtures/tsx/', import.meta.url);
    const tsx = new URL('../../node_modules/.bin/tsx', import.meta.url);
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(tsx.pathname, ['app.ts'], { cwd: app.pathname, timeout: 60_000 }, (error, out) => (error ? reject(error) : resolve(out)));
    });
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as { nested: number; imported: number | string; refused: { identifiers: string[]; inThisFile: boolean } };
    expect(report.nested).toBe(41);
    expect(report.refused).toEqual({ identifiers: ['limit'], inThisFile: true });
    // Loaded where the loader reaches worker threads; on Node 20 the error names the cause.
    expect([15, 'typescript-not-loadable']).toContain(report.imported);
  });
});
