/**
 * Where a function was defined. JavaScript has no API for it, but V8's
 * inspector knows every function's script: a synchronous, same-thread
 * inspector session reads the function's `[[FunctionLocation]]` and maps its
 * script id to a URL. It costs a few milliseconds, so the pool asks once per
 * distinct script block, and only for those that use `import()`.
 *
 * @module
 */

import { Session } from 'node:inspector';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';

interface RemoteObject { objectId?: string }
interface InternalProperty { name: string; value?: { value?: { scriptId?: string; lineNumber?: number; columnNumber?: number } } }

/** Where a function's source starts: its file's URL, and a 1-based line and column. */
export interface FunctionLocation {
  readonly url: string;
  readonly line: number;
  readonly column: number;
}

/** The file URL of the module or script that defined `fn`, or null when it cannot be told. */
export function definingFileUrl(fn: Function): string | null {
  return functionLocation(fn)?.url ?? null;
}

/** Where `fn` was written, or null when it cannot be told. */
export function functionLocation(fn: Function): FunctionLocation | null {
  const probeKey = Symbol.for('runspaces.locate-function');
  const globals = globalThis as unknown as Record<symbol, unknown>;
  let session: Session | undefined;
  try {
    session = new Session();
    session.connect();
    const urls = new Map<string, string>();
    session.on('Debugger.scriptParsed', (message) => urls.set(message.params.scriptId, message.params.url));
    globals[probeKey] = fn;
    let location: { scriptId?: string; lineNumber?: number; columnNumber?: number } | undefined;
    // With a same-thread session, post() answers synchronously.
    session.post('Debugger.enable', () => undefined);
    session.post('Runtime.evaluate', { expression: "globalThis[Symbol.for('runspaces.locate-function')]" }, (error, result) => {
      const objectId = (result?.result as RemoteObject | undefined)?.objectId;
      if (error || objectId === undefined) return;
      session!.post('Runtime.getProperties', { objectId, ownProperties: true }, (innerError, properties) => {
        if (innerError) return;
        const internal = (properties as { internalProperties?: InternalProperty[] }).internalProperties ?? [];
        location = internal.find((p) => p.name === '[[FunctionLocation]]')?.value?.value;
      });
    });
    session.post('Debugger.disable', () => undefined);
    const url = location?.scriptId === undefined ? undefined : urls.get(location.scriptId);
    if (!url) return null;
    const fileUrl = url.startsWith('file:') ? url : isAbsolute(url) ? pathToFileURL(url).href : null;
    if (fileUrl === null) return null;
    return { url: fileUrl, line: (location?.lineNumber ?? 0) + 1, column: (location?.columnNumber ?? 0) + 1 };
  } catch {
    return null;
  } finally {
    delete globals[probeKey];
    session?.disconnect();
  }
}
