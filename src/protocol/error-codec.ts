/**
 * Errors cross threads faithfully: name, message, stack, `code`, `cause`
 * (recursively), `errors` of an AggregateError, and other own data
 * properties. Built-in error classes come back as instances of the same class;
 * this library's own errors come back as their class, but only when the
 * library raised them (they are branded when encoded, never recognised by
 * name: a script's own `AbortSignal.timeout()` error is not the library's
 * `TimeoutError`); any other class comes back as an `Error` whose `name` is
 * the original's.
 *
 * The structured clone algorithm alone drops `code`, `cause` and custom names,
 * which is why errors are encoded by hand.
 *
 * @module
 */

import * as libraryErrors from '../errors.js';

export type SerializedError =
  | {
      readonly kind: 'error';
      readonly name: string;
      readonly message: string;
      readonly stack: string | undefined;
      readonly code: unknown;
      /** Raised by this library (an instance of `RunspacesError`): rebuilt as its class. */
      readonly library?: true;
      readonly cause?: SerializedError;
      readonly errors?: readonly SerializedError[];
      readonly props: Readonly<Record<string, unknown>>;
    }
  /** Something that is not an Error was thrown (`throw 'text'`). */
  | { readonly kind: 'value'; readonly value: unknown };

const BUILT_IN: Readonly<Record<string, ErrorConstructor>> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/**
 * This library's own errors, thrown inside a runspace (a missing module
 * export, a bad relative import), come back as instances of their class with
 * their fields. They are rebuilt without calling their constructors, whose
 * signatures differ, by copying the encoded fields onto the prototype.
 */
const LIBRARY: Readonly<Record<string, { prototype: Error }>> = Object.fromEntries(
  Object.values(libraryErrors)
    .filter((value): value is typeof libraryErrors.RunspacesError => typeof value === 'function' && value.prototype instanceof Error)
    .map((ctor) => [ctor.name, ctor]),
);

const RESERVED = new Set(['name', 'message', 'stack', 'code', 'cause', 'errors']);
const MAX_DEPTH = 8;

export function serializeError(thrown: unknown, depth = 0): SerializedError {
  if (!(thrown instanceof Error)) return { kind: 'value', value: cloneableOrString(thrown) };
  const props: Record<string, unknown> = {};
  for (const key of Object.keys(thrown)) {
    if (RESERVED.has(key)) continue;
    props[key] = cloneableOrString((thrown as unknown as Record<string, unknown>)[key]);
  }
  const result: {
    kind: 'error'; name: string; message: string; stack: string | undefined; code: unknown; library?: true;
    cause?: SerializedError; errors?: SerializedError[]; props: Record<string, unknown>;
  } = {
    kind: 'error',
    name: thrown.name,
    message: thrown.message,
    stack: thrown.stack,
    code: cloneableOrString((thrown as { code?: unknown }).code),
    props,
  };
  if (thrown instanceof libraryErrors.RunspacesError && Object.hasOwn(LIBRARY, thrown.name)) result.library = true;
  if (depth < MAX_DEPTH && 'cause' in thrown && thrown.cause !== undefined) {
    result.cause = serializeError(thrown.cause, depth + 1);
  }
  if (depth < MAX_DEPTH && thrown instanceof AggregateError) {
    result.errors = thrown.errors.map((e: unknown) => serializeError(e, depth + 1));
  }
  return result;
}

export function deserializeError(encoded: SerializedError): unknown {
  if (encoded.kind === 'value') return encoded.value;
  const cause = encoded.cause === undefined ? undefined : deserializeError(encoded.cause);
  const options = encoded.cause === undefined ? undefined : { cause };
  let error: Error;
  if (encoded.library === true && Object.hasOwn(LIBRARY, encoded.name)) {
    error = Object.create(LIBRARY[encoded.name]!.prototype) as Error;
    Object.defineProperty(error, 'message', { value: encoded.message, writable: true, configurable: true });
    if (options) Object.defineProperty(error, 'cause', { value: cause, writable: true, configurable: true });
  } else if (encoded.errors !== undefined) {
    error = new AggregateError(encoded.errors.map(deserializeError), encoded.message, options);
  } else {
    const Ctor = Object.hasOwn(BUILT_IN, encoded.name) ? BUILT_IN[encoded.name]! : Error;
    error = new Ctor(encoded.message, options);
  }
  if (error.name !== encoded.name) {
    Object.defineProperty(error, 'name', { value: encoded.name, writable: true, configurable: true });
  }
  if (encoded.stack !== undefined) {
    Object.defineProperty(error, 'stack', { value: encoded.stack, writable: true, configurable: true });
  }
  if (encoded.code !== undefined) (error as Error & { code: unknown }).code = encoded.code;
  Object.assign(error, encoded.props);
  return error;
}

/** Keep a value if it survives structured clone; otherwise describe it in text. */
function cloneableOrString(value: unknown): unknown {
  if (value === null || value === undefined) return value;
  const type = typeof value;
  if (type === 'string' || type === 'number' || type === 'boolean' || type === 'bigint') return value;
  try {
    return structuredClone(value);
  } catch {
    return String(value);
  }
}
