/**
 * The command line of `runspaces bench`: `--name value` options, lists as
 * `1,2,4`, durations as `2s` or `500ms`. Bad input is a {@link UsageError}
 * that names the option and what it expects; the command prints it and exits 2.
 *
 * @module
 */

export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface ParsedArgs {
  readonly positional: readonly string[];
  readonly options: ReadonlyMap<string, string | true>;
}

export function parseArgs(argv: readonly string[], flags: ReadonlySet<string>, valued: ReadonlySet<string>): ParsedArgs {
  const positional: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (flags.has(name)) {
      options.set(name, true);
      continue;
    }
    if (!valued.has(name)) throw new UsageError(`unknown option --${name}`);
    const value = inline ?? argv[++i];
    if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
    options.set(name, value);
  }
  return { positional, options };
}

export function positiveIntegers(name: string, text: string): number[] {
  const values = text.split(',').map((part) => Number(part.trim()));
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1 || v > 1024)) {
    throw new UsageError(`--${name} expects whole numbers from 1 to 1024, comma-separated, like 1,2,4,8 (got "${text}")`);
  }
  return values;
}

export function nonNegativeIntegers(name: string, text: string): number[] {
  const values = text.split(',').map((part) => Number(part.trim()));
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 0 || v > 1e9)) {
    throw new UsageError(`--${name} expects whole numbers of nanoseconds, comma-separated, like 0,1000,10000 (got "${text}")`);
  }
  return values;
}

export function choices<T extends string>(name: string, text: string, allowed: readonly T[]): T[] {
  const values = text.split(',').map((part) => part.trim());
  for (const value of values) {
    if (!(allowed as readonly string[]).includes(value)) {
      throw new UsageError(`--${name}: "${value}" is not one of ${allowed.join(', ')}`);
    }
  }
  return values as T[];
}

/** `2s`, `500ms`, `1.5s`, or a bare number of milliseconds. */
export function duration(name: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  const ms = match === null ? Number.NaN : Number(match[1]) * (match[2] === 's' ? 1000 : 1);
  if (!Number.isFinite(ms) || ms < 10 || ms > 600_000) {
    throw new UsageError(`--${name} expects a duration from 10ms to 600s, like 2s or 500ms (got "${text}")`);
  }
  return ms;
}

export function count(name: string, text: string, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > max) throw new UsageError(`--${name} expects a whole number from 1 to ${max} (got "${text}")`);
  return value;
}
