/**
 * Reading a caller's options object without trusting it: every public API
 * reads its options through these, so a getter that throws, a Proxy trap or
 * a value of the wrong kind becomes an `InvalidArgumentError` naming the
 * option, never an untyped error from deep inside the library.
 *
 * @module
 */

import { InvalidArgumentError, messageOf, RunspacesError, shown } from '../errors.js';
import { timeoutMs } from './deadline.js';

/**
 * A plain copy of `keys` of `options` (undefined or an object), read once:
 * what the library uses afterwards cannot change or throw under it.
 */
export function readOptions<K extends string>(options: unknown, keys: readonly K[], argument = 'options'): Partial<Record<K, unknown>> {
  if (options === undefined) return {};
  if (options === null || (typeof options !== 'object' && typeof options !== 'function')) {
    throw new InvalidArgumentError(argument, `expected an options object, got ${shown(options)}`);
  }
  const copy: Partial<Record<K, unknown>> = {};
  let key: K | undefined;
  try {
    for (key of keys) copy[key] = (options as Record<K, unknown>)[key];
  } catch (error) {
    throw new InvalidArgumentError(key === undefined ? argument : key, `it could not be read (${messageOf(error)})`, { cause: error });
  }
  return copy;
}

/** `timeout` and `signal` of a wait's options, read and checked (see deadline.ts for the timeout rule). */
export function cancelOptions(options: unknown): { readonly timeout: number | undefined; readonly signal: AbortSignal | undefined } {
  const { timeout, signal } = readOptions(options, ['timeout', 'signal']);
  return { timeout: timeoutMs('timeout', timeout), signal: abortSignalOption(signal) };
}

/** A `signal` option: undefined or an `AbortSignal` (a Proxy whose traps throw is neither). */
export function abortSignalOption(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  let isSignal = false;
  try {
    isSignal = signal instanceof AbortSignal;
  } catch {
    // a Proxy whose getPrototypeOf trap throws
  }
  if (!isSignal) throw new InvalidArgumentError('signal', 'expected an AbortSignal');
  return signal as AbortSignal;
}

/**
 * The last net at a public boundary: the library's own errors pass; anything
 * else was thrown by the caller's value while the library looked at it.
 */
export function asArgumentError(error: unknown, argument: string): unknown {
  if (error instanceof RunspacesError) return error;
  return new InvalidArgumentError(argument, `it could not be used (${messageOf(error)})`, { cause: error });
}

/** A `baseUrl` option as text (a URL as its href); one whose Proxy traps or conversion throw is an `InvalidArgumentError`. */
export function baseUrlOption(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  try {
    return value instanceof URL ? value.href : String(value);
  } catch (error) {
    throw new InvalidArgumentError('baseUrl', `it could not be read (${messageOf(error)})`, { cause: error });
  }
}
