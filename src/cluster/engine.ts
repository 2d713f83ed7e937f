/**
 * The packages the cluster runs on, loaded on first use: BullMQ (queues,
 * leases, stalled-job recovery; decision 0037) over ioredis. They are
 * optional dependencies of `runspaces`: a program that never opens a
 * cluster never loads them, and one that does without them installed is told
 * what to install.
 *
 * @module
 */

import { ClusterUnavailableError } from '../errors.js';

async function importEngine() {
  const [bullmq, ioredis] = await Promise.all([import('bullmq'), import('ioredis')]);
  return { Queue: bullmq.Queue, Worker: bullmq.Worker, Redis: ioredis.Redis };
}

/** The classes the cluster uses. */
export type Engine = Awaited<ReturnType<typeof importEngine>>;

let loaded: Promise<Engine> | undefined;

export function loadEngine(): Promise<Engine> {
  const loading = (loaded ??= importEngine().catch((error: unknown) => {
    loaded = undefined;
    throw new ClusterUnavailableError("The cluster needs the packages 'bullmq' and 'ioredis': npm install bullmq ioredis", { cause: error });
  }));
  return loading;
}

/** Where Redis is: a `redis://host:port[/db]` URL, as given to `--redis` and `{ redis }`. */
export interface RedisLocation {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly password: string | undefined;
  readonly username: string | undefined;
}

export function parseRedisUrl(url: string): RedisLocation {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new ClusterUnavailableError(`'${url}' is not a Redis URL (redis://host:port)`, { cause: error });
  }
  if (parsed.protocol !== 'redis:') throw new ClusterUnavailableError(`'${url}' is not a Redis URL (redis://host:port)`);
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
  return {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    db: Number.isInteger(db) ? db : 0,
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
    username: parsed.username === '' ? undefined : decodeURIComponent(parsed.username),
  };
}

