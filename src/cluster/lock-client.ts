/**
 * What the cluster's locks share: their name and options checked, one
 * connection to Redis, their Lua scripts run with a clear error when Redis
 * cannot be reached, and the wait that tries again every few milliseconds.
 *
 * @module
 */

import { ClusterUnavailableError, InvalidArgumentError, OperationCancelledError } from '../errors.js';
import { WaitCanceller } from '../sync/cancel-waits.js';
import { deadlineOf, remaining, timeoutMs } from '../util/deadline.js';
import { cancelOptions } from '../util/options.js';
import { redisConnection } from './connection.js';
import { loadEngine, parseRedisUrl } from './engine.js';

/** What the locks use of an ioredis client. */
interface ScriptClient {
  eval(script: string, keyCount: number, ...args: (string | number)[]): Promise<unknown>;
  disconnect(): void;
}

export class LockClient {
  readonly #canceller = new WaitCanceller();

  private constructor(
    readonly client: ScriptClient,
    /** Names the lock in errors: "the cluster mutex 'inventory'". */
    readonly what: string,
    readonly keys: readonly string[],
    /** Milliseconds a holder keeps the lock without renewing it. */
    readonly lease: number,
  ) {}

  /**
   * Checks the name, `redis` and `lease` (at least 100 ms, default 10 s),
   * then connects; `ClusterUnavailableError` when Redis cannot be reached.
   */
  static async open(kind: string, name: unknown, options: { readonly redis?: unknown; readonly lease?: unknown }, keysOf: (name: string) => string[]): Promise<LockClient> {
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) throw new InvalidArgumentError('name', 'expected 1 to 200 characters');
    if (typeof options.redis !== 'string') throw new InvalidArgumentError('redis', 'expected a Redis URL (redis://host:port)');
    const lease = timeoutMs('lease', options.lease ?? 10_000);
    if (lease === undefined || lease < 100) throw new InvalidArgumentError('lease', 'expected at least 100 ms');
    const url = options.redis;
    const engine = await loadEngine();
    const client = new engine.Redis({ ...redisConnection(parseRedisUrl(url)), maxRetriesPerRequest: 1, lazyConnect: true });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (error) {
      client.disconnect();
      throw new ClusterUnavailableError(`Redis at ${url} cannot be reached: ${(error as Error).message}`, { cause: error });
    }
    return new LockClient(client as unknown as ScriptClient, `${kind} '${name}'`, keysOf(name), lease);
  }

  /** How often a holder renews its lease: every third of it. */
  get renewEvery(): number {
    return Math.max(50, Math.floor(this.lease / 3));
  }

  /** Runs one of the lock's scripts over its keys. */
  async run(script: string, ...args: (string | number)[]): Promise<unknown> {
    try {
      return await this.client.eval(script, this.keys.length, ...this.keys, ...args);
    } catch (error) {
      throw new ClusterUnavailableError(`The ${this.what} could not reach Redis: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Calls `attempt` until it succeeds (true), the `timeout` passes (false)
   * or the `signal` aborts or `cancel()` is called (`OperationCancelledError`),
   * pausing 2 ms, doubling to 64, between attempts.
   */
  async retry(attempt: () => Promise<boolean>, options: unknown): Promise<boolean> {
    const { timeout, signal: callerSignal } = cancelOptions(options);
    const signal = this.#canceller.signalFor(callerSignal);
    const deadline = deadlineOf(timeout);
    for (let pause = 2; ; pause = Math.min(pause * 2, 64)) {
      if (signal?.aborted) throw new OperationCancelledError(signal.reason, false);
      if (await attempt()) return true;
      const left = remaining(deadline);
      if (left <= 0) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
    }
  }

  /** Stops every `retry` waiting now with `OperationCancelledError` whose reason is `reason`; later ones are unaffected. */
  cancel(reason: Error): void {
    this.#canceller.cancel(reason);
  }

  disconnect(): void {
    this.client.disconnect();
  }
}
