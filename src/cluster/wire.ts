/**
 * What travels through Redis: jobs (a call, or a chunk of a loop's items)
 * and their results. Functions travel as script-block source or as a module
 * path relative to the deployment's module root; values as `v8.serialize`
 * (structured clone: Maps, Sets, Dates, typed arrays, cycles), base64 in the
 * job's JSON; errors through the library's error codec, so they come back
 * with their class, `code`, `cause` and stack.
 *
 * @module
 */

import { deserialize, serialize } from 'node:v8';
import { ClusterValueError, InvalidArgumentError } from '../errors.js';
import { isRemote } from '../affinity/remote.js';
import { instanceClassInfo } from '../affinity/class-registry.js';
import type { SerializedError } from '../protocol/error-codec.js';
import type { StreamRecord } from '../protocol/stream-records.js';
import { isShareable } from '../sync/shared-cells.js';

/** A function as a node can find it again. */
export type WireFunction =
  /** `base`: the file its relative `import()` resolves against, as a path under the module root. */
  | { readonly kind: 'script'; readonly source: string; readonly base?: string }
  | { readonly kind: 'module'; readonly path: string; readonly export: string; readonly context: boolean };

export interface ChunkJob {
  readonly kind: 'chunk';
  readonly loop: string;
  readonly fn: WireFunction;
  /** Loop index of the first item. */
  readonly first: number;
  readonly items: string;
  readonly using: string | undefined;
  /** Most of the chunk's items running at once on its node (the loop's share of its `throttleLimit`). */
  readonly throttle?: number;
  /** Each item in a runspace of its own, as a local loop's `useNewRunspace`. */
  readonly useNewRunspace?: boolean;
}

export interface InvokeJob {
  readonly kind: 'invoke';
  readonly call: string;
  readonly fn: WireFunction;
  readonly args: string;
  readonly using: string | undefined;
}

export type ClusterJob = ChunkJob | InvokeJob;

/** A job as it is queued: where its node sends replies, and whether to say when it starts. */
export type QueuedJob = ClusterJob & { readonly replyTo: string; readonly notifyActive: boolean };

/**
 * What a node tells a job's caller, in this order: `active` when it takes
 * the job (when asked), `records` any number of times while it runs, then
 * `result`, or `failed` when the queue itself failed the job.
 */
export type ReplyKind = 'active' | 'records' | 'result' | 'failed';

/** Why the queue failed a job (`failed` reply): lost with its node too often, or another reason. */
export interface JobFailure {
  readonly stalled: boolean;
  readonly reason: string;
}

/**
 * A chunk's outcome: `values[i]` is item `first + i`'s output unless
 * `failures` lists `i`. Its records travel before it (`records` replies),
 * each `index` counted from the chunk's first item.
 */
export interface ChunkResult {
  readonly values: unknown[];
  readonly failures: (readonly [number, SerializedError])[];
  /** The chunk never ran: the loop was cancelled before. */
  readonly cancelled?: boolean;
}

export type InvokeResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: SerializedError };

/**
 * Stream records packed for the caller. Records already crossed from a
 * runspace by structured clone, so they pack; one that still cannot (a
 * value `v8.serialize` refuses) becomes a warning that says so.
 */
export function packRecords(records: readonly StreamRecord[]): string {
  try {
    return pack(records);
  } catch {
    return pack(records.map((record) => {
      try {
        pack(record);
        return record;
      } catch (error) {
        const { runspaceId, time, index } = record;
        return { stream: 'warning', message: `a ${record.stream} record could not be sent to the caller: ${(error as Error).message}`, runspaceId, time, ...(index === undefined ? {} : { index }) } satisfies StreamRecord;
      }
    }));
  }
}

/** A call as a job: its arguments and `using` checked (an array; nothing that cannot cross) and packed. */
export function invokeJob(call: string, fn: WireFunction, args: unknown, using: unknown): InvokeJob {
  const list = args ?? [];
  if (!Array.isArray(list)) throw new InvalidArgumentError('args', 'expected an array of arguments');
  assertCrossable(list, 'args');
  if (using !== undefined) assertCrossable(using, 'using');
  return { kind: 'invoke', call, fn, args: pack(list), using: using === undefined ? undefined : pack(using) };
}

export function pack(value: unknown): string {
  return serialize(value).toString('base64');
}

export function unpack<T>(text: string): T {
  return deserialize(Buffer.from(text, 'base64')) as T;
}

/**
 * Refuses what cannot mean the same on another machine, naming where it is:
 * functions, synchronization primitives, objects with runspace affinity
 * (and proxies of them), and instances of other classes (structured clone
 * would deliver their fields without their methods).
 */
export function assertCrossable(value: unknown, path: string): void {
  const seen = new Set<object>();
  const stack: [unknown, string][] = [[value, path]];
  while (stack.length > 0) {
    const [current, where] = stack.pop()!;
    if (typeof current === 'function') throw new ClusterValueError(where, 'a function');
    if (current === null || typeof current !== 'object' || seen.has(current)) continue;
    seen.add(current);
    if (isShareable(current)) throw new ClusterValueError(where, `a ${current.constructor.name} (a lock in this process's memory)`);
    if (isRemote(current) || instanceClassInfo(current) !== undefined) throw new ClusterValueError(where, 'an object with runspace affinity');
    if (current instanceof Map) {
      let i = 0;
      for (const [key, entry] of current) {
        stack.push([key, `${where}.keys[${i}]`], [entry, `${where}.get(${i++})`]);
      }
      continue;
    }
    if (current instanceof Set) {
      let i = 0;
      for (const entry of current) stack.push([entry, `${where}.values[${i++}]`]);
      continue;
    }
    if (Array.isArray(current)) {
      current.forEach((entry, i) => stack.push([entry, `${where}[${i}]`]));
      continue;
    }
    const proto = Object.getPrototypeOf(current);
    if (proto !== Object.prototype && proto !== null) {
      if (isBuiltIn(current)) continue;
      throw new ClusterValueError(where, `an instance of ${proto?.constructor?.name ?? 'a class'}`);
    }
    for (const key of Object.keys(current)) stack.push([(current as Record<string, unknown>)[key], `${where}.${key}`]);
  }
}

function isBuiltIn(value: object): boolean {
  return value instanceof Date || value instanceof RegExp || value instanceof Error || ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer;
}
