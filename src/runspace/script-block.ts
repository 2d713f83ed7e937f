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
import { IMPORTER_NAME, PROVIDED_HELPERS, scriptFileName, VITE_IMPORTER_NAME } from '../protocol/script-source.js';
import { compileFunction } from 'node:vm';

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
      const typescript = typeScriptSibling(url);
      if (typescript !== undefined) return importTypeScript(specifier, typescript, importFromWorker, error);
      throw new RelativeImportError(
        specifier,
        `import('${specifier}') in a script block resolved to ${url} (relative to ${base}, where the script block was defined), which does not exist. Fix the path, or pass { baseUrl } to invoke() to choose the file it resolves against.`,
        { cause: error },
      );
    }
  };
}

/**
 * TypeScript code imports `./helper.js` for a file that is `helper.ts`; its
 * loader (tsx, ts-node) maps one to the other for importers it compiled.
 * A script block's import comes from the runspace's own (JavaScript) file,
 * so the mapping is done here: the `.ts` sibling of a missing `.js`.
 */
function typeScriptSibling(url: string): string | undefined {
  const match = /\.(m|c)?js$/.exec(url);
  if (match === null) return undefined;
  const sibling = `${url.slice(0, -match[0].length)}.${match[1] ?? ''}ts`;
  return existsSync(new URL(sibling)) ? sibling : undefined;
}

async function importTypeScript(specifier: string, url: string, importFromWorker: Importer, notFound: unknown): Promise<unknown> {
  try {
    return await importFromWorker(url);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw error;
    throw new RelativeImportError(
      specifier,
      `import('${specifier}') in a script block found ${url}, a TypeScript file, which this runspace cannot load: your TypeScript loader (tsx, ts-node) did not reach its worker thread (loader hooks reach worker threads only on newer Node versions). Compile that module to JavaScript, import it from a module function ({ module, export }), or run on a newer Node.`,
      { cause: notFound },
    );
  }
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

/** Names a script block's body sees besides the globals: the importers, and compiler helpers (see script-source.ts). */
const PARAMETERS = [IMPORTER_NAME, VITE_IMPORTER_NAME, ...PROVIDED_HELPERS];

/** esbuild's keepNames helper: gives a function its name. */
const nameHelper = (target: object, value: string): object => Object.defineProperty(target, 'name', { value, configurable: true });

/** TypeScript's helper for async functions below ES2017: runs a generator as an async function. */
function awaiterHelper(thisArg: unknown, args: unknown, PromiseClass: PromiseConstructor | undefined, body: (...a: unknown[]) => Generator): Promise<unknown> {
  const P = PromiseClass ?? Promise;
  return new P((resolve, reject) => {
    const generator = body.apply(thisArg, (args as unknown[] | undefined) ?? []);
    const step = (method: 'next' | 'throw', value: unknown): void => {
      let result: IteratorResult<unknown>;
      try {
        result = generator[method](value);
      } catch (error) {
        reject(error);
        return;
      }
      if (result.done) resolve(result.value);
      else P.resolve(result.value).then((next) => step('next', next), (error: unknown) => step('throw', error));
    };
    step('next', undefined);
  });
}

/** TypeScript's helper for object rest below ES2018: the own enumerable properties of `source` not named in `excluded`. */
function restHelper(source: object, excluded: readonly PropertyKey[]): Record<PropertyKey, unknown> {
  const rest: Record<PropertyKey, unknown> = {};
  for (const key of Reflect.ownKeys(source)) {
    if (!excluded.includes(key) && Object.prototype.propertyIsEnumerable.call(source, key)) rest[key] = (source as Record<PropertyKey, unknown>)[key];
  }
  return rest;
}

/** Global (indirect) eval: the script block sees globals and its parameters, nothing of this module. */
const globalEval = eval;
/** What a compiled script block's text opens with, before its prefix and source. */
const OPENING = `(function (${PARAMETERS.join(', ')}) {`;

/**
 * Compiles under a file name (`sourceURL`) that lets the pool map stack
 * frames back to where the script block was written (see script-source.ts).
 *
 * Indirect `eval`, not `vm.compileFunction`: on Node 22 and 24 every
 * function `vm.compileFunction` compiles stays in memory for good (about
 * 1 KiB each, measured: 30,000 distinct sources grew the heap by 29–30 MiB
 * after collection, with or without a file name or the default dynamic-import
 * loader; `new vm.Script` keeps 35–40 MiB on every version), so a service
 * that generates script blocks would grow without bound. Eval'd code is
 * collected like any function (1.7 MiB for the same 30,000, on Node 20, 22
 * and 24). Its `import()` is never used: the source's dynamic imports arrive
 * renamed to the importer passed in (protocol/script-source.ts).
 */
function compileWrapped(id: number, prefix: string, source: string, suffix: string, values: readonly unknown[]): unknown {
  const body = `${prefix}${source}${suffix}`;
  let wrapper: (...parameters: unknown[]) => unknown;
  try {
    wrapper = globalEval(`${OPENING}${body}\n})\n//# sourceURL=${scriptFileName(id, OPENING.length + prefix.length)}`) as typeof wrapper;
  } catch (error) {
    if (!(error instanceof EvalError)) throw error;
    // Code generation from strings is off (--disallow-code-generation-from-strings): vm still compiles.
    wrapper = compileFunction(body, PARAMETERS, { filename: scriptFileName(id, prefix.length) }) as typeof wrapper;
  }
  return wrapper(...values);
}

export function compileScript(definition: ScriptDefinition, importFromWorker: Importer): CompiledScript {
  // Dynamic imports arrive renamed to the importers passed in here (see protocol/script-source.ts).
  const { source, id } = definition;
  const importer = makeImporter(definition.base, importFromWorker);
  const values = [importer, makeViteImporter(importer), nameHelper, awaiterHelper, restHelper];
  let compiled: unknown;
  try {
    compiled = compileWrapped(id, 'return (', source, '\n);', values);
  } catch (expressionError) {
    // Method shorthand (`run(ctx) { ... }`) is not an expression on its own.
    try {
      compiled = compileWrapped(id, 'return Object.values({ ', source, '\n })[0];', values);
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
