import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AutoResetEvent,
  CountdownEvent,
  InvalidOperationError,
  ManualResetEvent,
  OperationCancelledError,
  RunspacePool,
  WaitHandleKindError,
  type RunspaceContext,
} from 'runspaces';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 4, maxRunspaces: 4 });
});
afterAll(() => pool.close());

describe('ManualResetEvent', () => {
  test('set releases every waiting runspace and main-thread task; reset closes the gate again', async () => {
    const gate = new ManualResetEvent(false);
    const arrived = new Int32Array(new SharedArrayBuffer(4));
    const runspaces = Array.from({ length: 3 }, () => pool.invoke((ctx: RunspaceContext<{ gate: ManualResetEvent; arrived: SharedArrayBuffer }>) => {
      const cells = new Int32Array(ctx.using.arrived);
      Atomics.add(cells, 0, 1);
      Atomics.notify(cells, 0);
      return ctx.using.gate.waitOne(10_000);
    }, { using: { gate, arrived: arrived.buffer } }));
    const mainWaiter = gate.waitAsync({ timeout: 10_000 });
    while (Atomics.load(arrived, 0) < 3) await Atomics.waitAsync(arrived, 0, Atomics.load(arrived, 0), 1000).value;
    expect(gate.isSet).toBe(false);
    gate.set();
    expect(await Promise.all([...runspaces, mainWaiter])).toEqual([true, true, true, true]);
    expect(await gate.waitAsync({ timeout: 0 })).toBe(true);
    gate.reset();
    expect(await gate.waitAsync({ timeout: 5 })).toBe(false);
  });

  test('named events are shared by name; another kind under that name is refused', async () => {
    const { event, createdNew } = ManualResetEvent.open('Local\\go', false);
    expect(createdNew).toBe(true);
    const waiting = pool.invoke(async () => (await import('runspaces')).ManualResetEvent.openExisting('go').waitOne(10_000));
    event.set();
    expect(await waiting).toBe(true);
    expect(() => AutoResetEvent.open('go')).toThrow(WaitHandleKindError);
  });

  test('a blocking wait on the main thread is refused with a pointer to waitAsync', () => {
    expect(() => new ManualResetEvent(true).waitOne()).toThrow(/waitAsync/);
  });
});

describe('AutoResetEvent', () => {
  test('each set lets exactly one waiter through', async () => {
    const event = new AutoResetEvent(false);
    const passed = new Int32Array(new SharedArrayBuffer(4));
    const waiters = Array.from({ length: 4 }, () => pool.invoke((ctx) => {
      const e = ctx.using.event as AutoResetEvent;
      const cells = new Int32Array(ctx.using.passed as SharedArrayBuffer);
      if (!e.waitOne(10_000)) return false;
      Atomics.add(cells, 0, 1);
      Atomics.notify(cells, 0);
      return true;
    }, { using: { event, passed: passed.buffer } }));
    for (let round = 1; round <= 4; round++) {
      event.set();
      while (Atomics.load(passed, 0) < round) await Atomics.waitAsync(passed, 0, round - 1, 1000).value;
      expect(Atomics.load(passed, 0)).toBe(round);
    }
    expect(await Promise.all(waiters)).toEqual([true, true, true, true]);
  });

  test('20k sets and waits between two runspaces pass one for one', async () => {
    const ping = new AutoResetEvent(false);
    const pong = new AutoResetEvent(false);
    const n = 20_000;
    const [a, b] = await Promise.all([
      pool.invoke((ctx, rounds: number) => {
        const { ping: p, pong: q } = ctx.using as { ping: AutoResetEvent; pong: AutoResetEvent };
        let passes = 0;
        for (let i = 0; i < rounds; i++) { p.set(); if (q.waitOne(10_000)) passes++; }
        return passes;
      }, { args: [n], using: { ping, pong } }),
      pool.invoke((ctx, rounds: number) => {
        const { ping: p, pong: q } = ctx.using as { ping: AutoResetEvent; pong: AutoResetEvent };
        let passes = 0;
        for (let i = 0; i < rounds; i++) { if (p.waitOne(10_000)) passes++; q.set(); }
        return passes;
      }, { args: [n], using: { ping, pong } }),
    ]);
    expect([a, b]).toEqual([n, n]);
  });

  test('an aborted waitAsync takes nothing; the set goes to a live waiter', async () => {
    const event = new AutoResetEvent(false);
    const controller = new AbortController();
    const aborted = event.waitAsync({ signal: controller.signal });
    const live = event.waitAsync({ timeout: 5_000 });
    controller.abort();
    await expect(aborted).rejects.toBeInstanceOf(OperationCancelledError);
    event.set();
    expect(await live).toBe(true);
    expect(await event.waitAsync({ timeout: 0 })).toBe(false);
  });
});

describe('CountdownEvent', () => {
  test('can be named: runspaces open it by name and count down the one the main thread waits on', async () => {
    const { event: loaded, createdNew } = CountdownEvent.open('Local\\test-countdown-named', 4);
    expect(createdNew).toBe(true);
    expect(CountdownEvent.open('test-countdown-named', 99)).toMatchObject({ createdNew: false });
    const waiting = loaded.waitAsync({ timeout: 10_000 });
    const names = await Promise.all([0, 1, 2, 3].map(async () => pool.invoke(async () => {
      const { CountdownEvent: Countdown } = await import('runspaces');
      const event = Countdown.openExisting('test-countdown-named');
      event.signal();
      return event.name;
    })));
    expect(names).toEqual(['test-countdown-named', 'test-countdown-named', 'test-countdown-named', 'test-countdown-named']);
    expect(await waiting).toBe(true);
    expect(CountdownEvent.tryOpenExisting('test-countdown-missing')).toBeUndefined();
    ManualResetEvent.open('test-countdown-other-kind');
    expect(CountdownEvent.tryOpenExisting('test-countdown-other-kind')).toBeUndefined();
    expect(() => CountdownEvent.openExisting('test-countdown-other-kind')).toThrow(WaitHandleKindError);
  });

  test('is set once every participant signals, across runspaces', async () => {
    const done = new CountdownEvent(40);
    const waiting = done.waitAsync({ timeout: 10_000 });
    const results = await Promise.all(Array.from({ length: 40 }, () => pool.invoke((ctx) => (ctx.using.done as CountdownEvent).signal(), { using: { done } })));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await waiting).toBe(true);
    expect(done.isSet).toBe(true);
  });

  test('signal past zero and addCount on a set event throw and change nothing', () => {
    const event = new CountdownEvent(2);
    expect(() => event.signal(3)).toThrow(InvalidOperationError);
    expect(event.currentCount).toBe(2);
    event.addCount(2);
    expect(event.signal(4)).toBe(true);
    expect(() => event.signal()).toThrow(InvalidOperationError);
    expect(() => event.addCount()).toThrow(/already set/);
    expect(event.tryAddCount()).toBe(false);
    event.reset();
    expect([event.currentCount, event.initialCount]).toEqual([2, 2]);
    event.reset(5);
    expect([event.currentCount, event.initialCount]).toEqual([5, 5]);
  });

  test('invalid counts are refused', () => {
    expect(() => new CountdownEvent(-1)).toThrow(/initialCount/);
    expect(() => new CountdownEvent(1).signal(0)).toThrow(/signalCount/);
  });
});
