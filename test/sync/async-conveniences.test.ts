// The conveniences async-mutex users reach for, with cases modelled on
// async-mutex's own test/mutex.ts and test/semaphore.ts: isLocked,
// waitForUnlock, cancel, weights, scoped use.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { InvalidArgumentError, Mutex, OperationCancelledError, RunspacePool, Semaphore, TimeoutError, type RunspaceContext } from 'runspaces';
import { Gate } from '../helpers.js';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
});
afterAll(() => pool.close());

describe('Mutex: isLocked, waitForUnlock, cancel', () => {
  test.each([false, true])('isLocked follows acquire and release (fair: %s)', async (fair) => {
    const mutex = new Mutex(false, { fair });
    expect(mutex.isLocked()).toBe(false);
    await mutex.acquire();
    expect(mutex.isLocked()).toBe(true);
    mutex.releaseMutex();
    expect(mutex.isLocked()).toBe(false);
  });

  test.each([false, true])('waitForUnlock resolves once the mutex is released, and takes nothing (fair: %s)', async (fair) => {
    const mutex = new Mutex(false, { fair });
    await mutex.acquire();
    let unlocked = false;
    const watching = mutex.waitForUnlock().then((value) => (unlocked = value));
    await Promise.resolve();
    expect(unlocked).toBe(false);
    mutex.releaseMutex();
    expect(await watching).toBe(true);
    expect(mutex.isLocked()).toBe(false);
    expect(await mutex.waitForUnlock()).toBe(true);
    await mutex.acquire();
    expect(await mutex.waitForUnlock({ timeout: 5 })).toBe(false);
    mutex.releaseMutex();
  });

  test('a watcher never takes the wake-up an acquirer in a runspace needs (20 rounds, 3 watchers each)', async () => {
    const mutex = new Mutex();
    for (let round = 0; round < 20; round++) {
      await mutex.acquire();
      const watchers = [0, 1, 2].map(() => mutex.waitForUnlock({ timeout: 10_000 }));
      const gate = new Gate();
      const acquirer = pool.invoke((ctx: RunspaceContext<{ mutex: Mutex; gate: SharedArrayBuffer }>) => {
        const cells = new Int32Array(ctx.using.gate);
        Atomics.add(cells, 1, 1);
        Atomics.notify(cells, 1);
        const took = ctx.using.mutex.waitOne(10_000);
        if (took) ctx.using.mutex.releaseMutex();
        return took;
      }, { using: { mutex, gate: gate.buffer } });
      await gate.arrivals(1);
      mutex.releaseMutex();
      expect(await Promise.all(watchers)).toEqual([true, true, true]);
      expect(await acquirer).toBe(true);
    }
  });

  test('cancel rejects every pending acquire and withLock with OperationCancelledError; the owner keeps the mutex; later waits work', async () => {
    const mutex = new Mutex();
    await mutex.acquire();
    const pending = [mutex.acquire(), mutex.withLock(() => 'ran'), mutex.waitForUnlock()];
    mutex.cancel();
    for (const wait of pending) {
      const error = await wait.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OperationCancelledError);
      expect((error as OperationCancelledError).reason).toMatchObject({ message: 'Mutex.cancel() stopped this wait.' });
    }
    expect(mutex.isLocked()).toBe(true);
    const later = mutex.acquire();
    mutex.releaseMutex();
    expect(await later).toBe(true);
    mutex.releaseMutex();
    expect(mutex.isLocked()).toBe(false);
  });

  test('cancel joins the caller\'s own signal: either stops the wait', async () => {
    const mutex = new Mutex();
    await mutex.acquire();
    const controller = new AbortController();
    const byCaller = mutex.acquire({ signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    await expect(byCaller).rejects.toMatchObject({ reason: { message: 'caller gave up' } });
    const byCancel = mutex.acquire({ signal: new AbortController().signal });
    mutex.cancel();
    await expect(byCancel).rejects.toBeInstanceOf(OperationCancelledError);
    mutex.releaseMutex();
  });
});

describe('Semaphore: weights, isLocked, waitForUnlock, cancel, withLock', () => {
  test('acquire with a weight takes that many permits at once, and waits until that many are free', async () => {
    const semaphore = new Semaphore(2, 4);
    let took = false;
    const heavy = semaphore.acquire({ weight: 3 }).then((value) => (took = value));
    await Promise.resolve();
    expect(took).toBe(false);
    expect(semaphore.currentCount).toBe(2);
    semaphore.release();
    expect(await heavy).toBe(true);
    expect(semaphore.currentCount).toBe(0);
    semaphore.release(3);
    expect(semaphore.currentCount).toBe(3);
  });

  test('a release of one permit still wakes a waiter that needs one when a heavier waiter sleeps ahead of it', async () => {
    const semaphore = new Semaphore(0, 3);
    // Both are asleep on the count when acquire returns; the heavy one first.
    // No timeouts: a lost wake-up would leave them asleep (and the test failing on its own timeout).
    const heavy = semaphore.acquire({ weight: 3 });
    const light = semaphore.acquire({ signal: new AbortController().signal });
    semaphore.release(1);
    expect(await light).toBe(true);
    semaphore.release(3);
    expect(await heavy).toBe(true);
  });

  test('isLocked is true while no permit is free; waitForUnlock waits for the weight asked, taking nothing', async () => {
    const semaphore = new Semaphore(1, 3);
    expect(semaphore.isLocked()).toBe(false);
    await semaphore.acquire();
    expect(semaphore.isLocked()).toBe(true);
    const twoFree = semaphore.waitForUnlock({ weight: 2 });
    semaphore.release();
    expect(semaphore.currentCount).toBe(1);
    expect(await semaphore.waitForUnlock({ timeout: 5, weight: 2 })).toBe(false);
    semaphore.release();
    expect(await twoFree).toBe(true);
    expect(semaphore.currentCount).toBe(2);
  });

  test('withLock holds the weight for the callback and gives it back after, even when it throws; a timeout is a TimeoutError', async () => {
    const semaphore = new Semaphore(3, 3);
    expect(await semaphore.withLock(() => semaphore.currentCount, { weight: 2 })).toBe(1);
    expect(semaphore.currentCount).toBe(3);
    await expect(semaphore.withLock(() => {
      throw new Error('inside');
    }, { weight: 3 })).rejects.toThrow('inside');
    expect(semaphore.currentCount).toBe(3);
    await semaphore.acquire({ weight: 3 });
    await expect(semaphore.withLock(() => 'never', { timeout: 5 })).rejects.toBeInstanceOf(TimeoutError);
    semaphore.release(3);
  });

  test('cancel rejects every pending wait; permits held stay held; later waits work', async () => {
    const semaphore = new Semaphore(0, 2);
    const pending = [semaphore.acquire(), semaphore.acquire({ weight: 2 }), semaphore.waitForUnlock(), semaphore.withLock(() => 1)];
    semaphore.cancel();
    for (const wait of pending) await expect(wait).rejects.toBeInstanceOf(OperationCancelledError);
    expect(semaphore.currentCount).toBe(0);
    const later = semaphore.acquire();
    semaphore.release();
    expect(await later).toBe(true);
  });

  test.each([0, -1, 1.5, 5, '2'])('weight %s is refused with InvalidArgumentError', async (weight) => {
    const semaphore = new Semaphore(4, 4);
    await expect(semaphore.acquire({ weight: weight as number })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(semaphore.waitForUnlock({ weight: weight as number })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(semaphore.withLock(() => 1, { weight: weight as number })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(semaphore.currentCount).toBe(4);
  });
});
