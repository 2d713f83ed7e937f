/**
 * PowerShell's streams besides output: records a running script block writes
 * through its context (`ctx.writeWarning(...)` and friends) that reach the
 * caller while the work runs, in the order they were written, and always
 * before the work's own result.
 *
 * @module
 */

import { deserializeError, type SerializedError } from './error-codec.js';

/** Progress of a long operation, as `Write-Progress` reports it. */
export interface ProgressInfo {
  /** What is being done, e.g. "Resizing images". */
  readonly activity: string;
  /** The current step, e.g. "photo-17.jpg". */
  readonly status?: string;
  /** 0..100, or omitted when unknown. */
  readonly percentComplete?: number;
  /** Distinguishes several concurrent activities of one task. */
  readonly activityId?: number;
  /** True once the activity is finished. */
  readonly completed?: boolean;
}

interface RecordBase {
  /** Id of the runspace that wrote the record. */
  readonly runspaceId: number;
  /** `Date.now()` in the runspace when the record was written. */
  readonly time: number;
  /** In a parallel loop or its job: the index of the input item that wrote it. */
  readonly index?: number;
}

/**
 * A record a script block wrote with `ctx.write*` (PowerShell's streams):
 * warning, verbose, debug, information, error, progress, or output.
 */
export type StreamRecord =
  | (RecordBase & { readonly stream: 'warning' | 'verbose' | 'debug'; readonly message: string })
  | (RecordBase & { readonly stream: 'information'; readonly data: unknown; readonly tags: readonly string[] })
  /** A value written with `ctx.writeOutput` (Write-Output): a job's output, a record for anything else. */
  | (RecordBase & { readonly stream: 'output'; readonly data: unknown })
  | (RecordBase & { readonly stream: 'error'; readonly error: unknown })
  | (RecordBase & { readonly stream: 'progress'; readonly progress: ProgressInfo });

/** The names of the streams a record can belong to. */
export type StreamName = StreamRecord['stream'];

/** A stream record as it travels: errors are encoded. */
export type WireRecord =
  | Exclude<StreamRecord, { stream: 'error' }>
  | (RecordBase & { readonly stream: 'error'; readonly error: SerializedError });

export function decodeRecord(record: WireRecord): StreamRecord {
  if (record.stream !== 'error') return record;
  return { ...record, error: deserializeError(record.error) };
}
