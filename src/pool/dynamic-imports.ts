/**
 * Finding the real dynamic `import()` calls of a script block, so the
 * runspace can route them (relative specifiers resolve against the file that
 * defined the function). A parser (acorn), not a pattern: a pattern cannot
 * tell `import(x)` from the same characters in a string, a template literal,
 * a regular expression or a comment, and rewriting those changed users' data.
 *
 * acorn costs about 7 ms to load, so it is loaded on first need: only for a
 * source whose text mentions `import(` at all, once per distinct source.
 *
 * @module
 */

import { createRequire } from 'node:module';
import type * as Acorn from 'acorn';
import type * as AcornWalk from 'acorn-walk';
import { IMPORTER_NAME, VITE_IMPORT_HELPER, VITE_IMPORTER_NAME } from '../protocol/script-source.js';

/** Cheap pre-check: may the source contain a dynamic import at all? */
const MENTIONS_IMPORT = /(?:\bimport|__vite?_ssr_dynamic_import__)\s*\(/;

let parser: { acorn: typeof Acorn; walk: typeof AcornWalk } | undefined;

function loadParser(): { acorn: typeof Acorn; walk: typeof AcornWalk } {
  const require = createRequire(import.meta.url);
  return (parser ??= { acorn: require('acorn') as typeof Acorn, walk: require('acorn-walk') as typeof AcornWalk });
}

export interface RoutedSource {
  /** The source with each dynamic import renamed (see protocol/script-source.ts). */
  readonly source: string;
  /** True when it has at least one dynamic import. */
  readonly importsDynamically: boolean;
}

/**
 * Renames the dynamic imports of a function's source. A source the parser
 * cannot read is returned as it is (the runspace will report it if it does
 * not compile either).
 */
export function routeDynamicImports(source: string): RoutedSource {
  if (!MENTIONS_IMPORT.test(source)) return { source, importsDynamically: false };
  const { acorn, walk } = loadParser();
  let program: Acorn.Node | undefined;
  let offset = 0;
  // A function expression parses in parentheses; method shorthand (`run(ctx) {}`) only inside an object.
  for (const [open, close] of [['(', ')'], ['({', '})']] as const) {
    try {
      program = acorn.parse(`${open}${source}\n${close}`, { ecmaVersion: 'latest', sourceType: 'script', allowAwaitOutsideFunction: true });
      offset = open.length;
      break;
    } catch {
      // try the next wrapping
    }
  }
  if (program === undefined) return { source, importsDynamically: false };
  const edits: { start: number; end: number; text: string }[] = [];
  walk.full(program, (node) => {
    if (node.type === 'ImportExpression') {
      // `import` is the first token of the expression; keep `(` and what follows.
      edits.push({ start: node.start - offset, end: node.start - offset + 'import'.length, text: IMPORTER_NAME });
    } else if (node.type === 'Identifier' && VITE_IMPORT_HELPER.test((node as Acorn.Identifier).name)) {
      edits.push({ start: node.start - offset, end: node.end - offset, text: VITE_IMPORTER_NAME });
    }
  });
  if (edits.length === 0) return { source, importsDynamically: false };
  edits.sort((a, b) => a.start - b.start);
  let routed = '';
  let at = 0;
  for (const edit of edits) {
    routed += source.slice(at, edit.start) + edit.text;
    at = edit.end;
  }
  return { source: routed + source.slice(at), importsDynamically: true };
}
