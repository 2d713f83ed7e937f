import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RunspacePool, isRemote, sessionState, type Remote } from 'runspaces';
import type * as Decorated from '../fixtures/decorated.js';

// The test runner does not lower decorators, so the fixture is compiled here as
// a user's build would, once per decorator flavour, and imported as plain ESM.
const source = readFileSync(fileURLToPath(new URL('../fixtures/decorated.ts', import.meta.url)), 'utf8');
const outDir = new URL('../fixtures/.generated/', import.meta.url);

function compile(name: string, experimentalDecorators: boolean): string {
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, experimentalDecorators },
  });
  mkdirSync(outDir, { recursive: true });
  const file = new URL(name, outDir);
  writeFileSync(file, outputText);
  return file.href;
}

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ maxRunspaces: 1 });
});
afterAll(() => pool.close());

describe.each([
  ['standard decorators', 'decorated.js', false],
  ['experimentalDecorators', 'decorated-legacy.js', true],
])('TypeScript classes with %s', (_flavour, file, experimental) => {
  test('@RunspaceAffinity() keeps instances home, @NoRunspaceAffinity() copies them, both found by their module', async () => {
    const url = compile(file, experimental);
    const { Tally, Unit } = (await import(url)) as typeof Decorated;
    const tally = new Tally();
    const seen = await pool.invoke(
      async (ctx) => {
        const { isRemote: remote } = await import('runspaces');
        const proxy = ctx.using.tally as unknown as Remote<Decorated.Tally>;
        return { remote: remote(proxy), total: await proxy.add(2), label: ctx.using.unit.label(3), runspaceId: ctx.runspaceId };
      },
      { using: { tally, unit: new Unit('kg') } },
    );
    expect(seen.remote).toBe(true);
    expect(seen.total).toBe(2);
    expect(tally.count).toBe(2);
    expect(sessionState().get('tally.adds')).toBeGreaterThan(0);
    expect(seen.label).toBe(`3 kg in ${seen.runspaceId}`);
    expect(isRemote(tally)).toBe(false);
  });
});
