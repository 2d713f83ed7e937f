/**
 * Finding *which* value failed to cross. `postMessage` throws a DataCloneError
 * that does not say where the offending value sits in a deep structure; this
 * walks the values that were about to be sent and names the first path that
 * cannot be cloned. It runs only after a send failed, so the happy path pays
 * nothing.
 *
 * @module
 */

import { UncloneableValueError, UsingFunctionError } from '../errors.js';

/**
 * Returns the error describing the first uncloneable value under `root`, or
 * undefined when everything clones (then the failure was elsewhere).
 */
export function findUncloneable(
  root: unknown,
  rootPath: string,
  /** `'using'`: a function found is a {@link UsingFunctionError}, as PowerShell refuses script blocks in `$using:`. */
  role: 'using' | 'value' = 'value',
): UncloneableValueError | UsingFunctionError | undefined {
  const seen = new Set<unknown>();
  const visit = (value: unknown, path: string): UncloneableValueError | UsingFunctionError | undefined => {
    if (typeof value === 'function') {
      return role === 'using'
        ? new UsingFunctionError(path)
        : new UncloneableValueError(path, 'functions cannot be copied between threads');
    }
    if (typeof value === 'symbol') return new UncloneableValueError(path, 'symbols cannot be copied between threads');
    if (value === null || typeof value !== 'object' || seen.has(value)) return undefined;
    seen.add(value);
    try {
      structuredClone(value);
      return undefined;
    } catch (error) {
      const children: Array<[string, unknown]> = value instanceof Map
        ? [...value.entries()].map(([k, v]) => [`${path}.get(${String(k)})`, v])
        : value instanceof Set
          ? [...value].map((v, i) => [`${path}[set ${i}]`, v])
          : Object.keys(value).map((k) => [
            Array.isArray(value) ? `${path}[${k}]` : `${path}.${k}`,
            (value as Record<string, unknown>)[k],
          ]);
      for (const [childPath, child] of children) {
        const found = visit(child, childPath);
        if (found) return found;
      }
      const kind = (value as object).constructor?.name ?? 'object';
      return new UncloneableValueError(path, `${kind} ${error instanceof Error ? `(${error.message})` : ''}`.trim(), { cause: error });
    }
  };
  return visit(root, rootPath);
}
