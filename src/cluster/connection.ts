/**
 * Names and connection settings shared by the caller and the nodes.
 *
 * @module
 */

import type { RedisLocation } from './engine.js';

export const DEFAULT_QUEUE = 'runspaces';
export const DEFAULT_LEASE_MS = 30_000;

/** The channel on which callers announce cancelled loops and calls. */
export function cancelChannel(queue: string): string {
  return `runspaces:${queue}:cancel`;
}

/**
 * The stream on which nodes answer one caller (one `ClusterPool`): a job's
 * start, its records and its result, read by that caller alone.
 */
export function replyStream(queue: string, caller: string): string {
  return `runspaces:${queue}:replies:${caller}`;
}

/** A reply stream nobody writes to for this long is deleted: its caller is gone. */
export const REPLY_STREAM_TTL_MS = 3_600_000;

/** The hash BullMQ keeps a job in while it is waiting or running (BullMQ's default `bull` prefix). */
export function jobKey(queue: string, jobId: string): string {
  return `bull:${queue}:${jobId}`;
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

