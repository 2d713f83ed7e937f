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
