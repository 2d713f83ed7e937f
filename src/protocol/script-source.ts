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
