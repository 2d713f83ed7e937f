// WaitHandle.waitAny / waitAll, with cases modelled on dotnet/runtime's
// System.Threading tests (WaitHandleTests, MutexTests' abandonment cases).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AbandonedMutexError,
  AutoResetEvent,
  BlockingWaitError,
  CountdownEvent,
  InvalidArgumentError,
  ManualResetEvent,
  Mutex,
  OperationCancelledError,
  RunspacePool,
  Semaphore,
  WaitHandle,
  type RunspaceContext,
} from 'runspaces';
import { Gate } from '../helpers.js';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
});
afterAll(() => pool.close());

describe('WaitHandle.waitAny', () => {
  test('returns the lowest index that lets the caller through, taking what a single wait takes; WaitTimeout when none does', async () => {
    const auto = new AutoResetEvent(true);
    const permits = new Semaphore(1, 1);
    const closed = new ManualResetEvent(false);
    expect(await WaitHandle.waitAnyAsync([closed, auto, permits])).toBe(1);
    expect(await auto.waitAsync({ timeout: 0 })).toBe(false);
    expect(await WaitHandle.waitAnyAsync([closed, auto, permits])).toBe(2);
    expect(permits.currentCount).toBe(0);
    expect(await WaitHandle.waitAnyAsync([closed, auto, permits], { timeout: 20 })).toBe(WaitHandle.WaitTimeout);
    expect(WaitHandle.WaitTimeout).toBe(258);
  });

  test('a runspace blocked on several handles wakes for whichever the main thread sets', async () => {
    const first = new ManualResetEvent(false);
    const second = new AutoResetEvent(false);
    const countdown = new CountdownEvent(2);
    const gate = new Gate();
    const waiting = pool.invoke(async (ctx: RunspaceContext<{ handles: [ManualResetEvent, AutoResetEvent, CountdownEvent]; gate: SharedArrayBuffer }>) => {
      const { WaitHandle: Handles } = await import('runspaces');
      const cells = new Int32Array(ctx.using.gate);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      return [Handles.waitAny(ctx.using.handles, 10_000), Handles.waitAny(ctx.using.handles, 10_000)];
    }, { using: { handles: [first, second, countdown], gate: gate.buffer } });
    await gate.arrivals(1);
    second.set();
    countdown.signal(2);
    expect(await waiting).toEqual([1, 2]);
  });

  test('a mutex taken from an owner that died is reported with its index, and held', async () => {
    const mutex = new Mutex();
    const never = new ManualResetEvent(false);
    await expect(pool.invoke((ctx) => { (ctx.using.m as Mutex).waitOne(); process.exit(4); }, { using: { m: mutex } }))
      .rejects.toMatchObject({ code: 'ERR_RUNSPACE_BROKEN' });
    const error = await WaitHandle.waitAnyAsync([never, mutex], { timeout: 5_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbandonedMutexError);
    expect(error).toMatchObject({ mutexIndex: 1 });
    expect((error as AbandonedMutexError).mutex).toBe(mutex);
    expect(mutex.isLocked()).toBe(true);
    mutex.releaseMutex();
    expect(mutex.isLocked()).toBe(false);
  });

  test('an abort rejects with OperationCancelledError and takes nothing', async () => {
    const permits = new Semaphore(0, 1);
    const controller = new AbortController();
    const waiting = WaitHandle.waitAnyAsync([permits], { signal: controller.signal });
    controller.abort(new Error('enough'));
    await expect(waiting).rejects.toBeInstanceOf(OperationCancelledError);
    permits.release();
    expect(permits.currentCount).toBe(1);
  });
});

describe('WaitHandle.waitAll', () => {
  test('holds every handle at once or none: a timeout gives back what it took', async () => {
    const mutex = new Mutex();
    const permits = new Semaphore(0, 1);
    const open = new ManualResetEvent(true);
    const auto = new AutoResetEvent(true);
    expect(await WaitHandle.waitAllAsync([mutex, auto, permits, open], { timeout: 20 })).toBe(false);
    expect(mutex.isLocked()).toBe(false);
    expect(await auto.waitAsync({ timeout: 0 })).toBe(true);
    auto.set();
    const all = WaitHandle.waitAllAsync([mutex, auto, permits, open], { timeout: 5_000 });
    permits.release();
    expect(await all).toBe(true);
    expect(mutex.isLocked()).toBe(true);
    expect(permits.currentCount).toBe(0);
    expect(await auto.waitAsync({ timeout: 0 })).toBe(false);
    mutex.releaseMutex();
  });

  test('runspaces and the main thread taking two mutexes in opposite orders: no deadlock, no lost update (3 × 200)', async () => {
    const a = new Mutex();
    const b = new Mutex();
    const shared = new Int32Array(new SharedArrayBuffer(4));
    const rounds = 200;
    const inRunspace = async (ctx: RunspaceContext<{ a: Mutex; b: Mutex; shared: SharedArrayBuffer }>, n: number) => {
      const { WaitHandle: Handles } = await import('runspaces');
      const cells = new Int32Array(ctx.using.shared);
      for (let i = 0; i < n; i++) {
        if (!Handles.waitAll(i % 2 === 0 ? [ctx.using.a, ctx.using.b] : [ctx.using.b, ctx.using.a], 10_000)) throw new Error('waitAll timed out');
        // A read, a pause, a write: a second owner would lose updates.
        const seen = cells[0]!;
        for (let spin = 0; spin < 50; spin++) Atomics.load(cells, 0);
        cells[0] = seen + 1;
        ctx.using.a.releaseMutex();
        ctx.using.b.releaseMutex();
      }
    };
    const runspaces = [0, 1].map(() => pool.invoke(inRunspace, { args: [rounds], using: { a, b, shared: shared.buffer } }));
    for (let i = 0; i < rounds; i++) {
      expect(await WaitHandle.waitAllAsync([b, a], { timeout: 10_000 })).toBe(true);
      const seen = shared[0]!;
      await Promise.resolve();
      shared[0] = seen + 1;
      b.releaseMutex();
      a.releaseMutex();
    }
    await Promise.all(runspaces);
    expect(shared[0]).toBe(3 * rounds);
  });
});

describe('WaitHandle arguments', () => {
  test.each([
    ['no handles', []],
    ['65 handles', Array.from({ length: 65 }, () => new ManualResetEvent(true))],
    ['a barrier-like object', [{ waitOne: () => true }]],
    ['not an array', new ManualResetEvent(true)],
  ])('%s is an InvalidArgumentError', async (_what, handles) => {
    await expect(WaitHandle.waitAnyAsync(handles as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(WaitHandle.waitAllAsync(handles as never)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  test('the same handle twice: allowed for waitAny, refused for waitAll (.NET\'s DuplicateWaitObjectException)', async () => {
    const event = new ManualResetEvent(true);
    expect(await WaitHandle.waitAnyAsync([event, event])).toBe(0);
    await expect(WaitHandle.waitAllAsync([event, event])).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  test('the blocking forms are refused on the main thread', () => {
    expect(() => WaitHandle.waitAny([new ManualResetEvent(true)])).toThrow(BlockingWaitError);
    expect(() => WaitHandle.waitAll([new ManualResetEvent(true)])).toThrow(BlockingWaitError);
  });
});
