/**
 * The node's side of the reply streams: a job's start, records and result
 * go to the stream of the caller that queued it (`ReplyReader` reads it).
 * Records are sent while the job runs, gathered for a moment so that a
 * chatty item costs Redis a few writes a second, not one per record.
 *
 * @module
 */

import type { StreamRecord } from '../protocol/stream-records.js';
import { REPLY_STREAM_TTL_MS } from './connection.js';
import { packRecords, type QueuedJob, type ReplyKind } from './wire.js';

/** Records wait at most this long before they are sent. */
const RECORD_BATCH_MS = 50;

/** What the writer uses of an ioredis client. */
export interface ReplyWriterClient {
  pipeline(): {
    xadd(key: string, id: '*', ...fields: string[]): unknown;
    pexpire(key: string, ms: number): unknown;
    exec(): Promise<[Error | null, unknown][] | null>;
  };
}

/** Appends messages about one job to a caller's stream, in order, in one round trip. */
export type ReplySender = (replyTo: string, jobId: string, messages: readonly (readonly [ReplyKind, string])[]) => Promise<void>;

export function replySender(client: ReplyWriterClient): ReplySender {
  return async (replyTo, jobId, messages) => {
    const pipeline = client.pipeline();
    for (const [kind, data] of messages) pipeline.xadd(replyTo, '*', 'j', jobId, 'k', kind, 'd', data);
    // A caller that died leaves its stream behind; it goes once nobody wrote to it for a while.
    pipeline.pexpire(replyTo, REPLY_STREAM_TTL_MS);
    const failed = ((await pipeline.exec()) ?? []).find(([error]) => error !== null);
    if (failed !== undefined) throw failed[0];
  };
}

/** One job's replies: its records while it runs, then its result after them. */
export class JobReplies {
  readonly #send: ReplySender;
  readonly #replyTo: string;
  readonly #jobId: string;
  #records: StreamRecord[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(send: ReplySender, job: QueuedJob, jobId: string) {
    this.#send = send;
    this.#replyTo = job.replyTo;
    this.#jobId = jobId;
    if (job.notifyActive) void send(this.#replyTo, jobId, [['active', '']]).catch(() => undefined);
  }

  /** Takes a record the job wrote; it reaches the caller within `RECORD_BATCH_MS`. */
  readonly record = (record: StreamRecord): void => {
    this.#records.push(record);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      const records = this.#takeRecords();
      if (records !== undefined) void this.#send(this.#replyTo, this.#jobId, [records]).catch(() => undefined);
    }, RECORD_BATCH_MS);
  };

  /** Sends the records not sent yet, then the result; rejects when Redis did not take them. */
  finish(packedResult: string): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const records = this.#takeRecords();
    return this.#send(this.#replyTo, this.#jobId, records === undefined ? [['result', packedResult]] : [records, ['result', packedResult]]);
  }

  #takeRecords(): readonly ['records', string] | undefined {
    if (this.#records.length === 0) return undefined;
    const records = this.#records;
    this.#records = [];
    return ['records', packRecords(records)];
  }
}
