/**
 * Names and connection settings shared by the caller and the nodes.
 *
 * @module
 */

import { resolve } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import type { RedisLocation } from './engine.js';

export const DEFAULT_QUEUE = 'runspaces';
export const DEFAULT_LEASE_MS = 30_000;

/** A `queue` option: a name BullMQ takes (no `:`, which it uses to build its keys). */
export function queueOption(value: unknown): string {
  if (value === undefined) return DEFAULT_QUEUE;
  if (typeof value !== 'string' || value.length === 0 || value.length > 200 || value.includes(':')) {
    throw new InvalidArgumentError('queue', 'expected a name of 1 to 200 characters without ":"');
  }
  return value;
}

/** A `moduleRoot` option as an absolute path: default the working directory. */
export function moduleRootOption(value: unknown): string {
  if (value === undefined) return process.cwd();
  if (typeof value !== 'string' || value.length === 0) throw new InvalidArgumentError('moduleRoot', 'expected a directory path');
  return resolve(value);
}

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

