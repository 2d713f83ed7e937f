/**
 * Names and connection settings shared by the caller and the nodes.
 *
 * @module
 */

import { ClusterUnavailableError } from '../errors.js';
import { loadEngine, parseRedisUrl, type RedisLocation } from './engine.js';

export const DEFAULT_QUEUE = 'runspaces';
export const DEFAULT_LEASE_MS = 30_000;

/** The channel on which callers announce cancelled loops and calls. */
export function cancelChannel(queue: string): string {
  return `runspaces:${queue}:cancel`;
}

/**
 * ioredis options for a connection BullMQ can block on (`maxRetriesPerRequest:
 * null`, as BullMQ requires for workers and event readers).
 */
export function redisConnection(location: RedisLocation): { host: string; port: number; db: number; password?: string; username?: string; maxRetriesPerRequest: null } {
  return {
    host: location.host,
    port: location.port,
    db: location.db,
    ...(location.password === undefined ? {} : { password: location.password }),
    ...(location.username === undefined ? {} : { username: location.username }),
    maxRetriesPerRequest: null,
  };
}

/** What the cluster's locks use of an ioredis client. */
export interface ScriptClient {
  eval(script: string, keyCount: number, ...args: (string | number)[]): Promise<unknown>;
  disconnect(): void;
}

/** A connected client for a cluster lock, or `ClusterUnavailableError` when Redis cannot be reached. */
export async function connectScriptClient(url: string): Promise<ScriptClient> {
  const engine = await loadEngine();
  const client = new engine.Redis({ ...redisConnection(parseRedisUrl(url)), maxRetriesPerRequest: 1, lazyConnect: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new ClusterUnavailableError(`Redis at ${url} cannot be reached: ${(error as Error).message}`, { cause: error });
  }
  return client as unknown as ScriptClient;
}
