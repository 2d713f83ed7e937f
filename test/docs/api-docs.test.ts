import ts from 'typescript';
import { expect, test } from 'vitest';

/** Every export of the package's entry, with what its TSDoc says. */
function publicExports(): { name: string; runtime: boolean; documented: boolean; example: boolean }[] {
  const entry = new URL('../../src/index.ts', import.meta.url).pathname;
  const program = ts.createProgram([entry], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, noEmit: true });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  return checker.getExportsOfModule(moduleSymbol).map((exported) => {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    return {
      name: exported.name,
      runtime: (symbol.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Function | ts.SymbolFlags.Variable)) !== 0,
      documented: ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim() !== '',
      example: symbol.getJsDocTags(checker).some((tag) => tag.name === 'example'),
    };
  });
}

const exports = publicExports();

test('every public export has TSDoc', () => {
  expect(exports.length).toBeGreaterThan(50);
  expect(exports.filter((e) => !e.documented).map((e) => e.name)).toEqual([]);
});

// Error classes are used by `instanceof` and `code`, which the README's examples show; every
// other class, function and value a user calls carries an example of its own (run by examples.test.ts).
test('every public class, function and value other than an error class has an @example', () => {
  expect(exports.filter((e) => e.runtime && !e.name.endsWith('Error') && !e.example).map((e) => e.name)).toEqual([]);
});

test('docs/api is what `npm run docs:api` generates from the current sources', async () => {
  const { execFile } = await import('node:child_process');
  const { mkdtempSync, readFileSync, readdirSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join, relative } = await import('node:path');
  const { promisify } = await import('node:util');
  const root = new URL('../..', import.meta.url).pathname;
  const out = mkdtempSync(join(tmpdir(), 'runspaces-api-'));
  try {
    await promisify(execFile)(process.execPath, [join(root, 'node_modules/typedoc/bin/typedoc'), '--out', out, '--logLevel', 'Error'], { cwd: root });
    const files = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
      .sort();
    const committed = join(root, 'docs/api');
    expect(files(committed)).toEqual(files(out));
    const stale = files(out).filter((file) => readFileSync(join(out, file), 'utf8') !== readFileSync(join(committed, file), 'utf8'));
    expect(stale, 'run npm run docs:api and commit docs/api').toEqual([]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 60_000);
