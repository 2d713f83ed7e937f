/**
 * Turning a script block's source back into a function inside a runspace.
 *
 * The source is compiled in the runspace's global scope, so nothing of the
 * caller's closure comes along (as in PowerShell). Dynamic `import()` in the
 * source is routed through {@link makeImporter}, so that a relative specifier
 * resolves against the file that defined the function rather than against
 * this worker's file, and `import('runspaces')` is this same library.
 *
 * @module
 */

import { RelativeImportError, ScriptBlockError } from '../errors.js';
import type { ScriptDefinition } from '../protocol/messages.js';

type Importer = (specifier: string) => Promise<unknown>;
export type CompiledScript = (...args: unknown[]) => unknown;

// `import(` not preceded by `.` or an identifier character: a call, not a method named import.
const DYNAMIC_IMPORT = /(?<![.\w$])import\s*\(/g;
// Vitest (and Vite SSR) rewrite `import()` in test files to this helper before we see the source.
const VITE_DYNAMIC_IMPORT = /(?<![.\w$])__vi_ssr_dynamic_import__\s*\(/g;
const IMPORTER_NAME = '__runspaces_import__';

const isRelative = (specifier: string): boolean =>
  specifier.startsWith('./') || specifier.startsWith('../') || specifier === '.' || specifier === '..';

export function makeImporter(base: string | null, importFromWorker: Importer): Importer {
  return async (specifier: string) => {
    specifier = String(specifier);
    if (!isRelative(specifier)) return importFromWorker(specifier);
    if (base === null) {
      throw new RelativeImportError(
        specifier,
        `import('${specifier}') in a script block has no file to resolve against. Pass { baseUrl: import.meta.url } to invoke(), use an absolute URL, or run a module function with invoke({ module, export }).`,
      );
    }
    const url = new URL(specifier, base).href;
    try {
      return await importFromWorker(url);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
      throw new RelativeImportError(
        specifier,
        `import('${specifier}') in a script block resolved to ${url} (relative to ${base}, the file that invoked it), which does not exist. If the function was defined in another file, pass { baseUrl: import.meta.url } from that file.`,
        { cause: error },
      );
    }
  };
}

export function compileScript(definition: ScriptDefinition, importFromWorker: Importer): CompiledScript {
  const source = definition.source.replace(DYNAMIC_IMPORT, `${IMPORTER_NAME}(`).replace(VITE_DYNAMIC_IMPORT, `${IMPORTER_NAME}(`);
  const importer = makeImporter(definition.base, importFromWorker);
  let compiled: unknown;
  try {
    compiled = new Function(IMPORTER_NAME, `return (${source}\n);`)(importer);
  } catch (expressionError) {
    // Method shorthand (`run(ctx) { ... }`) is not an expression on its own.
    try {
      compiled = new Function(IMPORTER_NAME, `return Object.values({ ${source}\n })[0];`)(importer);
    } catch {
      throw new ScriptBlockError(
        `The script block's source could not be compiled in the runspace: ${(expressionError as Error).message}. Script blocks must be self-contained function expressions.`,
        { cause: expressionError },
      );
    }
  }
  if (typeof compiled !== 'function') {
    throw new ScriptBlockError('The script block did not compile to a function.');
  }
  return compiled as CompiledScript;
}
