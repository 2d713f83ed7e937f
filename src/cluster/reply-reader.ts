/**
 * The caller's side of its reply stream: nodes write a job's start, its
 * records and its result to the stream of the caller that queued it, and
 * this reads that stream alone. Before, callers read the queue's shared
 * event stream: every caller read every job's completion, and one whose
 * event loop stalled while others' jobs went through lost its results when
 * BullMQ trimmed the stream (10,000 events, a fraction of a second at full
 * speed), and its calls waited forever.
 *
 * A job can also vanish without a reply: an operator empties the queue,
 * Redis restarts without its data, memory eviction. So every second the
 * reader looks for the jobs it waits on; one missing twice in a row, with
 * the stream read to its end in between (a finished job's result is written
 * before the job leaves the queue), fails with `ClusterUnavailableError`.
 *
 * @module
 */

import { ClusterNodeLostError, ClusterUnavailableError } from '../errors.js';
import type { StreamRecord } from '../protocol/stream-records.js';
import { jobKey } from './connection.js';
import { unpack, type JobFailure, type ReplyKind } from './wire.js';

/** What a caller waits on for one job. */
export interface ReplyWaiter {
  resolve(packedResult: string): void;
  reject(error: unknown): void;
  /** Told when a node takes the job. */
  onActive?: (() => void) | undefined;
  /** Records the job wrote, as they arrive. */
  onRecords?: ((records: readonly StreamRecord[]) => void) | undefined;
}

/** What the reader uses of an ioredis client. */
export interface ReplyClient {
  xread(...args: (string | number)[]): Promise<[string, [string, string[]][]][] | null>;
  xdel(key: string, ...ids: string[]): Promise<unknown>;
  pipeline(): { exists(key: string): unknown; exec(): Promise<[Error | null, unknown][] | null> };
  disconnect(): void;
}

interface Expected extends ReplyWaiter {
  /** The job is known to be in Redis (its `add` returned): from then on it must stay until it replies. */
  queued: boolean;
  /** Checks in a row that did not find it. */
  missing: number;
}

const READ_COUNT = 1_000;
const BLOCK_MS = 1_000;
const CHECK_EVERY_MS = 1_000;

export class ReplyReader {
  readonly #waiting = new Map<string, Expected>();
  readonly #reader: ReplyClient;
  readonly #commands: ReplyClient;
  readonly #key: string;
  readonly #queue: string;
  #lastId = '0-0';
  #lastCheck = performance.now();
  #stopped = false;
  #loop: Promise<void> | undefined;

  /** `reader` blocks on the stream; `commands` runs the checks. */
  constructor(reader: ReplyClient, commands: ReplyClient, key: string, queue: string) {
    this.#reader = reader;
    this.#commands = commands;
    this.#key = key;
    this.#queue = queue;
  }

  /** Jobs waited for. */
  get size(): number {
    return this.#waiting.size;
  }

  start(): void {
    this.#loop ??= this.#read();
  }

  /** Registers a job before it is queued: a quick node may reply before `add` returns. */
  expect(jobId: string, waiter: ReplyWaiter): void {
    this.#waiting.set(jobId, { ...waiter, queued: false, missing: 0 });
  }

  /** The job's `add` returned: it is in Redis. */
  queued(jobId: string): void {
    const waiter = this.#waiting.get(jobId);
    if (waiter !== undefined) waiter.queued = true;
  }

  /** Stops waiting for a job; true when it was waited for. */
  forget(jobId: string): boolean {
    return this.#waiting.delete(jobId);
  }

  failAll(error: Error): void {
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const waiter of waiting) waiter.reject(error);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    // Ends the blocking read at once instead of after its block time.
    this.#reader.disconnect();
    await this.#loop;
  }

  async #read(): Promise<void> {
    while (!this.#stopped) {
      let entries: [string, string[]][];
      try {
        const batch = await this.#reader.xread('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', this.#key, this.#lastId);
        entries = batch?.[0]?.[1] ?? [];
      } catch {
        if (this.#stopped) return;
        // The connection retries by itself; Redis away for long is the pool's unavailable watch's to report.
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      for (const [id, fields] of entries) {
        this.#lastId = id;
        this.#dispatch(fields);
      }
      // Read entries are not needed again: the stream holds only what is on its way.
      if (entries.length > 0) void this.#reader.xdel(this.#key, ...entries.map(([id]) => id)).catch(() => undefined);
      if (entries.length < READ_COUNT && performance.now() - this.#lastCheck >= CHECK_EVERY_MS) {
        this.#lastCheck = performance.now();
        await this.#checkVanished();
      }
    }
  }

  #dispatch(fields: string[]): void {
    const message = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) message.set(fields[i]!, fields[i + 1]!);
    const jobId = message.get('j') ?? '';
    const kind = message.get('k') as ReplyKind | undefined;
    const data = message.get('d') ?? '';
    const waiter = this.#waiting.get(jobId);
    if (waiter === undefined) return;
    try {
      switch (kind) {
        case 'active':
          waiter.onActive?.();
          break;
        case 'records':
          waiter.onRecords?.(unpack<StreamRecord[]>(data));
          break;
        case 'result':
          this.#waiting.delete(jobId);
          waiter.resolve(data);
          break;
        case 'failed': {
          this.#waiting.delete(jobId);
          const failure = unpack<JobFailure>(data);
          waiter.reject(failure.stalled
            ? new ClusterNodeLostError(`The node running job ${jobId} was lost twice (its lease expired); it is not run a third time. (${failure.reason})`)
            : new ClusterUnavailableError(`A node could not run job ${jobId}: ${failure.reason}`));
          break;
        }
        default:
          break;
      }
    } catch (error) {
      // A caller's record handler threw: reported as a local pool's would be, the reading goes on.
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  async #checkVanished(): Promise<void> {
    const ids = [...this.#waiting].filter(([, waiter]) => waiter.queued).map(([id]) => id);
    if (ids.length === 0) return;
    let found: boolean[];
    try {
      const pipeline = this.#commands.pipeline();
      for (const id of ids) pipeline.exists(jobKey(this.#queue, id));
      // A command that failed counts as found: only an answer of 0 says the job is gone.
      found = ((await pipeline.exec()) ?? []).map(([error, count]) => error !== null || count !== 0);
    } catch {
      return;
    }
    ids.forEach((id, i) => {
      const waiter = this.#waiting.get(id);
      if (waiter === undefined) return;
      if (found[i] !== false) {
        waiter.missing = 0;
        return;
      }
      if (++waiter.missing < 2) return;
      this.#waiting.delete(id);
      waiter.reject(new ClusterUnavailableError(`Job ${id} is no longer in Redis (removed from the queue, or Redis restarted without its data) and no result came back for it.`));
    });
  }
}
