/**
 * A worker node (`runspaces worker --redis ...`): a local `RunspacePool`
 * that takes calls and chunks of loops from a Redis queue (BullMQ), runs
 * them, and puts back their results.
 *
 * A job is held under a lease the node keeps renewing; a node that dies
 * stops renewing, and after the lease another node's stalled-job check puts
 * the job back in line once (BullMQ's `maxStalledCount: 1`); a second loss
 * fails it, and the caller gets `ClusterNodeLostError` (the delivery rule,
 * docs/scale-out.md). Cancellations arrive on a Redis channel and abort the
 * running items through their `ctx.signal`. Replies (a job's start, its
 * records as it runs, its result) go to the stream of the caller that
 * queued it.
 *
 * @module
 */

import { availableParallelism } from 'node:os';
import { resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidArgumentError, OperationCancelledError, ParallelItemError, TimeoutError } from '../errors.js';
import { RunspacePool } from '../facade/runspace-pool.js';
import type { ModuleFunction } from '../pool/invocation.js';
import { serializeError } from '../protocol/error-codec.js';
import { loadEngine, parseRedisUrl } from './engine.js';
import { JobReplies, replySender } from './reply-writer.js';
import { pack, unpack, type ChunkJob, type ChunkResult, type InvokeJob, type InvokeResult, type JobFailure, type QueuedJob, type WireFunction } from './wire.js';
import { cancelChannel, redisConnection, DEFAULT_LEASE_MS, moduleRootOption, queueOption } from './connection.js';
import { isValidCount } from '../pool/options.js';
import { timeoutMs } from '../util/deadline.js';
import { readOptions } from '../util/options.js';

/** Options of a worker node. */
export interface WorkerNodeOptions {
  /** Where Redis is: `redis://host:port[/db]`. */
  readonly redis: string;
  /** The queue to take work from. Default `'runspaces'`. */
  readonly queue?: string;
  /** Runspaces of this node's pool (and jobs it runs at once). Default `os.availableParallelism()`. */
  readonly maxRunspaces?: number;
  /** Where module functions and relative `import()` resolve: the same deployment on every node. Default the working directory. */
  readonly moduleRoot?: string;
  /**
   * Milliseconds a job stays leased to this node without a renewal; a node
   * that dies loses its jobs to another node this long after (plus half of
   * it, the stalled-job check's period). Default 30 000.
   */
  readonly leaseMs?: number;
}

/** A running worker node. */
export interface WorkerNode {
  /** Finishes the jobs it holds, stops taking new ones, closes its pool. */
  close(): Promise<void>;
}

/** Ids of cancelled loops and calls remembered, so a chunk queued before the cancellation is skipped. */
const REMEMBERED_CANCELLATIONS = 10_000;

/**
 * Starts a worker node in this process.
 *
 * @example
 * ```ts
 * import { startWorkerNode } from 'runspaces';
 * const node = await startWorkerNode({ redis: 'redis://127.0.0.1:6379', maxRunspaces: 4 });
 * process.once('SIGTERM', () => void node.close());
 * ```
 */
export async function startWorkerNode(options: WorkerNodeOptions): Promise<WorkerNode> {
  const read = readOptions(options, ['redis', 'queue', 'maxRunspaces', 'moduleRoot', 'leaseMs']) as WorkerNodeOptions;
  if (typeof read.redis !== 'string') throw new InvalidArgumentError('redis', 'expected a Redis URL (redis://host:port)');
  const location = parseRedisUrl(read.redis);
  const queue = queueOption(read.queue);
  const maxRunspaces = read.maxRunspaces ?? availableParallelism();
  if (!isValidCount(maxRunspaces, 1)) throw new InvalidArgumentError('maxRunspaces', 'expected an integer >= 1');
  const leaseMs = timeoutMs('leaseMs', read.leaseMs ?? DEFAULT_LEASE_MS);
  if (leaseMs === undefined || leaseMs < 100) throw new InvalidArgumentError('leaseMs', 'expected at least 100 ms');
  const moduleRoot = moduleRootOption(read.moduleRoot);
  const engine = await loadEngine();
  const baseUrl = pathToFileURL(moduleRoot + sep).href;
  const pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces });

  const running = new Map<string, Set<AbortController>>();
  const cancelled = new Set<string>();
  const subscriber = new engine.Redis(redisConnection(location));
  subscriber.on('error', () => {
    // ioredis reconnects by itself; the worker's own connection reports trouble.
  });
  await subscriber.subscribe(cancelChannel(queue));
  subscriber.on('message', (_channel: string, id: string) => {
    cancelled.add(id);
    if (cancelled.size > REMEMBERED_CANCELLATIONS) cancelled.delete(cancelled.values().next().value!);
    for (const controller of running.get(id) ?? []) controller.abort(new OperationCancelledError('cancelled by the caller', false));
  });

  const track = async <T>(id: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const controller = new AbortController();
    if (cancelled.has(id)) controller.abort(new OperationCancelledError('cancelled by the caller', false));
    let set = running.get(id);
    if (set === undefined) running.set(id, (set = new Set()));
    set.add(controller);
    try {
      return await work(controller.signal);
    } finally {
      set.delete(controller);
      if (set.size === 0) running.delete(id);
    }
  };

  /** Where a function's relative `import()` resolves: its file's place under this node's module root. */
  const baseUrlOf = (fn: WireFunction): string => {
    if (fn.kind !== 'script' || fn.base === undefined || fn.base === '') return baseUrl;
    const url = pathToFileURL(resolve(moduleRoot, fn.base)).href;
    return fn.base.endsWith('/') ? `${url}/` : url;
  };

  const functionOf = (fn: WireFunction): Function | ModuleFunction => {
    if (fn.kind === 'module') return { module: pathToFileURL(resolve(moduleRoot, fn.path)).href, export: fn.export, context: fn.context };
    // The queue is trusted as the deployment is: whoever can write to it runs code on the nodes.
    return new Function(`return (${fn.source}\n);`)() as Function;
  };

  const runChunk = (job: ChunkJob, replies: JobReplies): Promise<string> =>
    track(job.loop, async (signal) => {
      const items = unpack<unknown[]>(job.items);
      const using = job.using === undefined ? undefined : unpack<Record<string, unknown>>(job.using);
      const fn = functionOf(job.fn);
      const result: ChunkResult = { values: new Array(items.length), failures: [] };
      if (signal.aborted) return pack({ values: [], failures: [], cancelled: true } satisfies ChunkResult);
      const loop = pool.forEachParallel(items, fn as never, {
        using,
        ordered: true,
        errorAction: 'continue',
        throttleLimit: Math.min(maxRunspaces, job.throttle ?? maxRunspaces),
        useNewRunspace: job.useNewRunspace === true,
        signal,
        baseUrl: baseUrlOf(job.fn),
        onRecord: replies.record,
      });
      let outputs: unknown[];
      try {
        outputs = await loop.toArray();
      } catch (error) {
        if (error instanceof OperationCancelledError || error instanceof TimeoutError) return pack({ values: [], failures: [], cancelled: true } satisfies ChunkResult);
        // The loop as a whole could not run (its module would not load): every item fails with why.
        const why = serializeError(error);
        return pack({ values: [], failures: items.map((_, i) => [i, why] as const) } satisfies ChunkResult);
      }
      const failed = new Map<number, ParallelItemError>(loop.errors.map((error) => [error.index, error]));
      let next = 0;
      for (let i = 0; i < items.length; i++) {
        const failure = failed.get(i);
        if (failure !== undefined) result.failures.push([i, serializeError(failure.cause)]);
        else result.values[i] = outputs[next++];
      }
      return packChunk(result);
    });

  const runInvoke = (job: InvokeJob, replies: JobReplies): Promise<string> =>
    track(job.call, async (signal) => {
      const args = unpack<unknown[]>(job.args);
      const using = job.using === undefined ? undefined : unpack<Record<string, unknown>>(job.using);
      let result: InvokeResult;
      try {
        result = { ok: true, value: await pool.invoke(functionOf(job.fn) as never, { args, using, signal, baseUrl: baseUrlOf(job.fn), onRecord: replies.record }) };
      } catch (error) {
        result = { ok: false, error: serializeError(error) };
      }
      try {
        return pack(result);
      } catch (error) {
        return pack({ ok: false, error: serializeError(error) } satisfies InvokeResult);
      }
    });

  const replyClient = new engine.Redis(redisConnection(location));
  replyClient.on('error', () => {
    // ioredis reconnects by itself; replies sent meanwhile wait for it.
  });
  const send = replySender(replyClient);

  // The result is in the caller's stream before the job completes (and leaves the queue): the
  // caller relies on that order to tell a finished job from one that vanished.
  const worker = new engine.Worker(queue, async (job) => {
    const data = job.data as QueuedJob;
    const replies = new JobReplies(send, data, job.id!);
    await replies.finish(await (data.kind === 'chunk' ? runChunk(data, replies) : runInvoke(data, replies)));
  }, {
    connection: redisConnection(location),
    concurrency: maxRunspaces,
    lockDuration: leaseMs,
    stalledInterval: Math.max(500, Math.floor(leaseMs / 2)),
    maxStalledCount: 1,
  });
  worker.on('error', () => {
    // Connection trouble: ioredis reconnects; jobs held meanwhile are recovered by their leases.
  });
  // The queue failed a job (lost with its node once too often, found here when this node took it
  // back): its caller is told why.
  worker.on('failed', (job, error) => {
    const data = job?.data as QueuedJob | undefined;
    if (job?.id === undefined || typeof data?.replyTo !== 'string') return;
    const failure: JobFailure = { stalled: /stalled/i.test(error.message), reason: error.message };
    void send(data.replyTo, job.id, [['failed', pack(failure)]]).catch(() => undefined);
  });
  try {
    await worker.waitUntilReady();
  } catch (error) {
    await Promise.allSettled([worker.close(true), pool.close()]);
    subscriber.disconnect();
    replyClient.disconnect();
    throw error;
  }

  let closing: Promise<void> | undefined;
  return {
    close: () =>
      (closing ??= (async () => {
        await worker.close();
        await subscriber.quit().catch(() => undefined);
        await replyClient.quit().catch(() => undefined);
        await pool.close();
      })()),
  };
}

/** A chunk's result, with any output that cannot be serialized turned into that item's failure. */
function packChunk(result: ChunkResult): string {
  try {
    return pack(result);
  } catch {
    const values = [...result.values];
    const failures = [...result.failures];
    values.forEach((value, i) => {
      try {
        pack(value);
      } catch (error) {
        values[i] = undefined;
        failures.push([i, serializeError(error)]);
      }
    });
    return pack({ values, failures } satisfies ChunkResult);
  }
}
