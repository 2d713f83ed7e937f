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

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RelativeImportError, ScriptBlockError } from '../errors.js';
import type { ScriptDefinition } from '../protocol/messages.js';
import { IMPORTER_NAME, VITE_IMPORTER_NAME } from '../protocol/script-source.js';

type Importer = (specifier: string) => Promise<unknown>;
export type CompiledScript = (...args: unknown[]) => unknown;


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
        `import('${specifier}') in a script block resolved to ${url} (relative to ${base}, where the script block was defined), which does not exist. Fix the path, or pass { baseUrl } to invoke() to choose the file it resolves against.`,
        { cause: error },
      );
    }
  };
}

/**
 * Vite SSR also rewrites specifiers to ids relative to its root (`'/src/x.js'`);
 * the root is the working directory Vitest runs in.
 */
function makeViteImporter(importer: Importer): Importer {
  return (specifier: string) => {
    specifier = String(specifier);
    if (specifier.startsWith('/') && !existsSync(specifier)) {
      return importer(pathToFileURL(join(process.cwd(), specifier)).href);
    }
    return importer(specifier);
  };
}

export function compileScript(definition: ScriptDefinition, importFromWorker: Importer): CompiledScript {
  // Dynamic imports arrive renamed to the importers passed in here (see protocol/script-source.ts).
  const { source } = definition;
  const importer = makeImporter(definition.base, importFromWorker);
  const viteImporter = makeViteImporter(importer);
  let compiled: unknown;
  try {
    compiled = new Function(IMPORTER_NAME, VITE_IMPORTER_NAME, `return (${source}\n);`)(importer, viteImporter);
  } catch (expressionError) {
    // Method shorthand (`run(ctx) { ... }`) is not an expression on its own.
    try {
      compiled = new Function(IMPORTER_NAME, VITE_IMPORTER_NAME, `return Object.values({ ${source}\n })[0];`)(importer, viteImporter);
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
