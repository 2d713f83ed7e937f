import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { InvalidArgumentError, Mutex, OperationCancelledError, RunspacePool, Semaphore, type RunspaceContext } from 'runspaces';
import { startTimer, timeoutMs } from '../../dist/util/deadline.js';
// The unbundled module throws the unbundled error class (the package's bundle has its own copy).
import { InvalidArgumentError as ModuleInvalidArgumentError } from '../../dist/errors.js';
import { blockOnGate, Gate } from '../helpers.js';

/**
 * One rule for every timeout of the library (src/util/deadline.ts):
 * undefined or Infinity is no limit; 0 is already due; a finite number > 0 is
 * that many ms however large; anything else is an InvalidArgumentError.
 * A broken timer fires after ~1 ms, so each "no limit" case gives it 50 ms
 * to misfire before the work is let through.
 */
const MISFIRE_WINDOW_MS = 50;
const HUGE = 2 ** 31; // setTimeout turns this into 1 ms

describe('the timeout rule', () => {
  test('timeoutMs: undefined and Infinity mean no limit; 0 and large finite values are kept', () => {
    expect(timeoutMs('timeout', undefined)).toBeUndefined();
    expect(timeoutMs('timeout', Infinity)).toBeUndefined();
    expect(timeoutMs('timeout', 0)).toBe(0);
    expect(timeoutMs('timeout', HUGE)).toBe(HUGE);
  });

  test.each([-1, -0.5, NaN, -Infinity, '5', null, {}])('timeoutMs refuses %s with an InvalidArgumentError naming the option', (value) => {
    expect(() => timeoutMs('cancelGracePeriod', value)).toThrow(ModuleInvalidArgumentError);
    expect(() => timeoutMs('cancelGracePeriod', value)).toThrow(/cancelGracePeriod/);
  });

  test('a timer of 2^31 ms or more does not fire early; a short one fires', async () => {
    let fired = 0;
    const long = startTimer(HUGE, () => fired++);
    const short = new Promise<void>((resolve) => startTimer(5, resolve));
    await short;
    await delay(MISFIRE_WINDOW_MS);
    long.cancel();
    expect(fired).toBe(0);
  });
});

describe('every timeout of the library follows it', () => {
  let pool: RunspacePool;
  beforeAll(async () => {
    pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
  });
  afterAll(() => pool.close());

  test.each([Infinity, HUGE])('invoke({ timeout: %s }) lets the call finish', async (timeout) => {
    const gate = new Gate();
    const call = pool.invoke(blockOnGate, { using: { gate: gate.buffer }, timeout });
    await gate.arrivals(1);
    await delay(MISFIRE_WINDOW_MS);
    gate.open();
    await expect(call).resolves.toBeTypeOf('number');
  });

  test.each([Infinity, HUGE])('acquire({ timeout: %s }) waits until a runspace is free', async (timeout) => {
    const held = await pool.acquire();
    const waiting = pool.acquire({ timeout });
    await delay(MISFIRE_WINDOW_MS);
    expect(pool.stats().queued).toBe(1);
    held.release();
    const runspace = await waiting;
    expect(runspace.id).toBe(held.id);
    runspace.release();
  });

  test('a loop with timeout: Infinity runs every item', async () => {
    const gate = new Gate();
    const loop = pool.forEachParallel([1, 2, 3], (n: number, ctx) => {
      const cells = new Int32Array(ctx.using.gate as SharedArrayBuffer);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      Atomics.wait(cells, 0, 0);
      return n * 10;
    }, { using: { gate: gate.buffer }, timeout: Infinity, ordered: true });
    const outputs = loop.toArray();
    await gate.arrivals(1);
    await delay(MISFIRE_WINDOW_MS);
    gate.open();
    expect(await outputs).toEqual([10, 20, 30]);
  });

  test('job.wait({ timeout: Infinity }) waits for the job', async () => {
    const gate = new Gate();
    const job = pool.startThreadJob(blockOnGate, { using: { gate: gate.buffer } });
    const waited = job.wait({ timeout: Infinity });
    await gate.arrivals(1);
    await delay(MISFIRE_WINDOW_MS);
    gate.open();
    expect(await waited).toBe(true);
    expect(job.state).toBe('Completed');
  });

  test('cancelGracePeriod: Infinity never recycles a call that ignores its signal', async () => {
    await using patient = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1, cancelGracePeriod: Infinity });
    const first = await patient.invoke((ctx: RunspaceContext) => ctx.runspaceId);
    let recycled = 0;
    patient.on('runspaceClosed', () => recycled++);
    const gate = new Gate();
    const abort = new AbortController();
    const call = patient.invoke(blockOnGate, { using: { gate: gate.buffer }, signal: abort.signal });
    const settled = call.catch((error: unknown) => error);
    await gate.arrivals(1);
    abort.abort();
    await delay(MISFIRE_WINDOW_MS);
    gate.open();
    const error = await settled;
    expect(error).toBeInstanceOf(OperationCancelledError);
    expect((error as OperationCancelledError).runspaceRecycled).toBe(false);
    expect(await patient.invoke((ctx: RunspaceContext) => ctx.runspaceId)).toBe(first);
    expect(recycled).toBe(0);
  });

  test('a timeout of 0 is already due: a held mutex is not taken, a free one is', async () => {
    const mutex = new Mutex();
    expect(await mutex.acquire({ timeout: 0 })).toBe(true);
    const other = await pool.invoke((ctx: RunspaceContext<{ m: Mutex }>) => ctx.using.m.waitOne(0), { using: { m: mutex } });
    expect(other).toBe(false);
    mutex.releaseMutex();
  });

  test('-1 is refused everywhere with an InvalidArgumentError', async () => {
    const semaphore = new Semaphore(0, 1);
    await expect(pool.invoke(() => 1, { timeout: -1 })).rejects.toThrow(InvalidArgumentError);
    await expect(pool.acquire({ timeout: -1 })).rejects.toThrow(InvalidArgumentError);
    expect(() => pool.forEachParallel([1], (n: number) => n, { timeout: -1 })).toThrow(InvalidArgumentError);
    await expect(new Mutex().acquire({ timeout: -1 })).rejects.toThrow(InvalidArgumentError);
    await expect(semaphore.acquire({ timeout: -1 })).rejects.toThrow(InvalidArgumentError);
    expect(() => new RunspacePool({ idleTimeout: -1 })).toThrow(InvalidArgumentError);
    expect(() => new RunspacePool({ cancelGracePeriod: -1 })).toThrow(InvalidArgumentError);
  });
});
