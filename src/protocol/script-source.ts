/**
 * The contract between the main thread, which prepares a script block's
 * source, and the runspace, which compiles it: every real dynamic `import()`
 * in the source (found by a parser on the main thread, see
 * `pool/dynamic-imports.ts`) is renamed to a call of {@link IMPORTER_NAME},
 * which the runspace passes in as a parameter. Nothing else in the source is
 * touched: `"import("` in a string, a template, a regex or a comment stays.
 *
 * @module
 */

/** Stands for `import` in a prepared source. */
export const IMPORTER_NAME = '__runspaces_import__';
/**
 * Vite SSR (and so Vitest) rewrites `import()` in the files it serves to a
 * helper of this name; a script block defined in such a file arrives calling it.
 */
export const VITE_IMPORT_HELPER = /^__vite?_ssr_dynamic_import__$/;
/** Stands for Vite's helper in a prepared source. */
export const VITE_IMPORTER_NAME = '__runspaces_vite_import__';

/**
 * Helpers compilers put at the top of a compiled file, which a script block
 * compiled there refers to: tsx and esbuild's `__name` (keepNames), and
 * TypeScript's `__awaiter` and `__rest` (async functions and object rest
 * compiled for targets below ES2017 and ES2018; `tsc --init` chose ES2016
 * before TypeScript 5.9). A runspace passes its own implementations in
 * under these names.
 */
export const PROVIDED_HELPERS = ['__name', '__awaiter', '__rest'] as const;

/**
 * The file name a runspace compiles script block `id` under, so that its
 * stack frames can be found and mapped back to the file where the script
 * block was written (`pool/script-registry.ts`). `prefix` is the length of
 * the wrapper before the source on its first line.
 */
export function scriptFileName(id: number, prefix: number): string {
  return `runspaces-script-${id}-${prefix}`;
}

/** Matches a stack position in a compiled script block: id, prefix, line, column. */
export const SCRIPT_POSITION = /runspaces-script-(\d+)-(\d+):(\d+):(\d+)/g;
