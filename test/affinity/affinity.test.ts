import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AffinityClassError,
  Barrier,
  ProxyReleasedError,
  RemotePropertyError,
  RunspaceBrokenError,
  RunspacePool,
  UncloneableValueError,
  affinityStats,
  getRemoteProperty,
  homeRunspaceId,
  isRemote,
  releaseRemote,
  sessionState,
  setRemoteProperty,
  type Remote,
} from 'runspaces';
import { Amplifier, Counter, Listener, Plain, Probe, Scaler, SpecialCounter } from '../fixtures/affinity-classes.js';
import { Gate } from '../helpers.js';

const classes = new URL('../fixtures/affinity-classes.js', import.meta.url).href;
type Classes = typeof import('../fixtures/affinity-classes.js');

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 4, maxRunspaces: 4 });
  sessionState().set('label', 'main');
});
afterAll(() => pool.close());

/** Runs `fn` in one acquired runspace, releasing it after. */
async function inRunspace<T>(fn: (rs: Awaited<ReturnType<RunspacePool['acquire']>>) => Promise<T>): Promise<T> {
  const rs = await pool.acquire();
  try {
    return await fn(rs);
  } finally {
    rs.release();
  }
}

describe('RunspaceAffinity instances', () => {
  test('passed through using, an instance arrives as a proxy whose methods run at home, against the home session', async () => {
    const amplifier = new Amplifier(2);
    const seen = await pool.invoke(
      async (ctx) => {
        const { isRemote: remote } = await import('runspaces');
        const proxy = ctx.using.amplifier as unknown as Remote<Amplifier>;
        ctx.session.set('label', 'runspace');
        const pending = proxy.where();
        return { remote: remote(proxy), returnsPromise: pending instanceof Promise, where: await pending, runspaceId: ctx.runspaceId };
      },
      { using: { amplifier } },
    );
    expect(seen.remote).toBe(true);
    expect(seen.returnsPromise).toBe(true);
    expect(seen.where).toEqual({ threadId: 0, label: 'main' });
    expect(seen.runspaceId).not.toBe(0);
  });

  test("the seed's Amplifier: 4 parallel runspaces call getValue while home mutates its session, without an error and with exact results", async () => {
    const session = sessionState();
    session.set('amplifier.calls', 0);
    const amplifier = new Amplifier(1.01);
    const expected = amplifier.getValue(1);
    let stop = false;
    let epochs = 0;
    // Home keeps rewriting its session between the calls it serves, as the seed's `while ($true)` loop.
    const mutating = (async () => {
      while (!stop) {
        epochs++;
        session.set('epoch', epochs).set('epoch.copy', epochs);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const callsPerItem = 250;
    const sums = await pool
      .forEachParallel(
        [1, 2, 3, 4],
        async (item, ctx) => {
          const proxy = ctx.using.amplifier as unknown as Remote<Amplifier>;
          let sum = 0;
          for (let i = 0; i < ctx.using.calls; i++) sum += await proxy.getValue(1);
          return { item, sum, runspaceId: ctx.runspaceId };
        },
        { throttleLimit: 4, ordered: true, using: { amplifier, calls: callsPerItem } },
      )
      .toArray();
    stop = true;
    await mutating;
    expect(sums.map((s) => s.item)).toEqual([1, 2, 3, 4]);
    for (const { sum } of sums) expect(sum).toBeCloseTo(expected * callsPerItem, 6);
    // Every call ran at home, one at a time: not one read-modify-write of the home session was lost.
    expect(session.get('amplifier.calls')).toBe(1 + 4 * callsPerItem);
    expect(epochs).toBeGreaterThan(1);
  });

  test('returned from a runspace, an instance is a proxy on the main thread; its methods run in that runspace', async () => {
    await inRunspace(async (rs) => {
      const counter = (await rs.invoke(async (ctx) => {
        const { Counter: C } = (await import(ctx.using.classes)) as Classes;
        const made = new C();
        made.increment(5);
        return made;
      }, { using: { classes } })) as unknown as Remote<Counter>;
      expect(isRemote(counter)).toBe(true);
      expect(homeRunspaceId(counter)).toBe(rs.id);
      expect(await counter.increment()).toBe(6);
      expect(await counter.threadId()).toBe(rs.id);
      releaseRemote(counter);
    });
  });

  test('passed as an argument, an instance arrives as a proxy too', async () => {
    const amplifier = new Amplifier(3);
    const where = await pool.invoke(async (_ctx, proxy: Remote<Amplifier>) => proxy.where(), { args: [amplifier as unknown as Remote<Amplifier>] });
    expect(where.threadId).toBe(0);
  });

  test('an object that comes back to its home runspace is the object itself, not a proxy of a proxy', async () => {
    const amplifier = new Amplifier(2);
    expect(await pool.invoke((ctx) => ctx.using.amplifier, { using: { amplifier } })).toBe(amplifier);
    await inRunspace(async (rs) => {
      const counter = await rs.invoke(async (ctx) => {
        const { Counter: C } = (await import(ctx.using.classes)) as Classes;
        const made = new C();
        ctx.session.set('counter', made);
        return made;
      }, { using: { classes } });
      const same = await rs.invoke(async (ctx) => {
        const { isRemote: remote } = await import('runspaces');
        return ctx.using.counter === ctx.session.get('counter') && !remote(ctx.using.counter);
      }, { using: { counter } });
      expect(same).toBe(true);
    });
  });

  test("a proxy passed on to another runspace relays its calls to the object's home", async () => {
    const [home, other] = await Promise.all([pool.acquire(), pool.acquire()]);
    try {
      const counter = (await home.invoke(async (ctx) => {
        const { Counter: C } = (await import(ctx.using.classes)) as Classes;
        return new C();
      }, { using: { classes } })) as unknown as Remote<Counter>;
      const fromOther = await other.invoke(async (ctx) => {
        const proxy = ctx.using.counter as unknown as Remote<Counter>;
        await proxy.increment(2);
        return { count: await proxy.increment(3), ranIn: await proxy.threadId() };
      }, { using: { counter } });
      expect(fromOther).toEqual({ count: 5, ranIn: home.id });
      expect(await counter.increment()).toBe(6);
    } finally {
      home.release();
      other.release();
    }
  });

  test('the same instance sent twice arrives as the same proxy', async () => {
    const amplifier = new Amplifier(2);
    expect(await pool.invoke((ctx) => ctx.using.a === ctx.using.b, { using: { a: amplifier, b: amplifier } })).toBe(true);
  });
});

describe('static methods', () => {
  test('a class defined in the calling runspace runs its statics there, against its own session', async () => {
    const described = await inRunspace(async (rs) => {
      // The runspace defines the class first (imports its module), then receives it.
      await rs.invoke(async (ctx) => void (await import(ctx.using.classes)), { using: { classes } });
      return rs.invoke(async (ctx) => {
        const { Amplifier: A } = (await import(ctx.using.classes)) as Classes;
        ctx.session.set('label', 'runspace');
        const received = ctx.using.Amplifier as Classes['Amplifier'];
        return { same: received === A, described: received.describe(), runspaceId: ctx.runspaceId };
      }, { using: { classes, Amplifier } });
    });
    expect(described.same).toBe(true);
    expect(described.described).toEqual({ threadId: described.runspaceId, label: 'runspace' });
  });

  test('a class handle the main thread holds can be passed on to another runspace, and its statics still run at its origin', async () => {
    const elsewhere = new URL('../fixtures/affinity-elsewhere.js', import.meta.url).href;
    await using origin = await RunspacePool.open({ maxRunspaces: 1 });
    await using other = await RunspacePool.open({ maxRunspaces: 1 });
    type Beacon = { shine(): string };
    type BeaconHandle = { origin(): Promise<{ threadId: number; label: string }>; make(label: string): Promise<Remote<Beacon>> };
    const handle = (await origin.invoke(async (ctx) => {
      ctx.session.set('label', 'origin');
      return (await import(ctx.using.elsewhere)).Beacon;
    }, { using: { elsewhere } })) as unknown as BeaconHandle;
    expect(isRemote(handle)).toBe(true);
    expect(await handle.origin()).toEqual({ threadId: homeRunspaceId(handle), label: 'origin' });
    const seen = await other.invoke(async (ctx) => {
      const relayed = ctx.using.Beacon as unknown as BeaconHandle;
      const beacon = await relayed.make('b');
      return { origin: await relayed.origin(), shine: await beacon.shine() };
    }, { using: { Beacon: handle } });
    expect(seen).toEqual({ origin: { threadId: homeRunspaceId(handle), label: 'origin' }, shine: `b from ${homeRunspaceId(handle)}` });
  });

  test('a class handle in a runspace that never loaded the class runs its statics where it came from, until the runspace defines it', async () => {
    await using fresh = await RunspacePool.open({ maxRunspaces: 1 });
    const seen = await fresh.invoke(async (ctx) => {
      const { isRemote: remote } = await import('runspaces');
      const handle = ctx.using.Amplifier as unknown as { describe(): Promise<unknown>; new (): unknown };
      ctx.session.set('label', 'fresh runspace');
      const before = await handle.describe();
      let constructError: unknown;
      try {
        new handle();
      } catch (error) {
        constructError = { name: (error as Error).name, code: (error as { code?: string }).code };
      }
      await import(ctx.using.classes);
      const after = await handle.describe();
      return { remote: remote(handle), before, after, constructError, runspaceId: ctx.runspaceId };
    }, { using: { classes, Amplifier } });
    expect(seen.remote).toBe(true);
    expect(seen.before).toEqual({ threadId: 0, label: 'main' });
    expect(seen.constructError).toEqual({ name: 'AffinityClassError', code: 'ERR_AFFINITY_CLASS' });
    expect(seen.after).toEqual({ threadId: seen.runspaceId, label: 'fresh runspace' });
  });
});

describe('NoRunspaceAffinity instances', () => {
  test("a copy arrives as a real instance of its class, with its fields, and runs in the caller's runspace against its session", async () => {
    const scaler = new Scaler(5);
    const seen = await pool.invoke(async (ctx) => {
      const { Scaler: S } = (await import(ctx.using.classes)) as Classes;
      ctx.session.set('label', 'caller');
      const copy = ctx.using.scaler as InstanceType<Classes['Scaler']>;
      return { isInstance: copy instanceof S, factor: copy.factor, applied: copy.apply(3), where: copy.where(), runspaceId: ctx.runspaceId };
    }, { using: { scaler, classes } });
    expect(seen).toMatchObject({ isInstance: true, factor: 5, applied: 15 });
    expect(seen.where).toEqual({ threadId: seen.runspaceId, label: 'caller' });
  });

  test('copies run truly in parallel: two runspaces are inside the same method at once', async () => {
    const scaler = new Scaler(1, new Barrier(2));
    const [first, second] = await Promise.all([pool.acquire(), pool.acquire()]);
    try {
      const meet = (rs: typeof first) => rs.invoke((ctx) => ctx.using.scaler.meet(ctx.using.scaler.lock), { using: { scaler } });
      const [a, b] = await Promise.all([meet(first), meet(second)]);
      expect([a.met, b.met]).toEqual([true, true]);
      expect(new Set([a.threadId, b.threadId])).toEqual(new Set([first.id, second.id]));
    } finally {
      first.release();
      second.release();
    }
  });

  test('a runspace that never imported the class imports it before the call; a copy returned comes back as a real instance', async () => {
    await using fresh = await RunspacePool.open({ maxRunspaces: 1 });
    const back = await fresh.invoke((ctx) => {
      const copy = ctx.using.scaler as Scaler;
      copy.factor = copy.apply(7);
      return copy;
    }, { using: { scaler: new Scaler(6) } });
    expect(back).toBeInstanceOf(Scaler);
    expect(back.factor).toBe(42);
  });

  test('#private fields are not copied: a method that reads one throws in the copy', async () => {
    await expect(pool.invoke((ctx) => (ctx.using.scaler as Scaler).secret(), { using: { scaler: new Scaler() } })).rejects.toThrow(TypeError);
  });

  test('a NoRunspaceAffinity method is a local call in the caller: no proxy, no message', async () => {
    const remote = await pool.invoke(async (ctx) => (await import('runspaces')).isRemote(ctx.using.scaler), { using: { scaler: new Scaler() } });
    expect(remote).toBe(false);
  });
});

describe('re-entrant calls', () => {
  test('a method that calls another method of the same instance does not deadlock', async () => {
    await inRunspace(async (rs) => {
      const counter = (await rs.invoke(async (ctx) => new ((await import(ctx.using.classes)) as Classes).Counter(), { using: { classes } })) as unknown as Remote<Counter>;
      expect(await counter.incrementTwice()).toBe(2);
    });
  });

  test("a call that calls back into the caller's runspace, while the caller waits on it, does not deadlock", async () => {
    const counter = new Counter();
    const outcome = await pool.invoke(async (ctx) => {
      const { Listener: L } = (await import(ctx.using.classes)) as Classes;
      const listener = new L('listener');
      const result = await (ctx.using.counter as unknown as Remote<Counter>).notify(listener, 7);
      return { result, events: listener.events, runspaceId: ctx.runspaceId };
    }, { using: { counter, classes } });
    expect(outcome.result).toEqual({ reply: `listener got 7 in ${outcome.runspaceId}`, count: 1 });
    expect(outcome.events).toEqual([7]);
  });
});

describe('properties through a proxy', () => {
  test('fields and accessors are read and written at home with getRemoteProperty and setRemoteProperty; synchronous access throws a clear error', async () => {
    const amplifier = new Amplifier(2);
    const seen = await pool.invoke(async (ctx) => {
      const { getRemoteProperty: get, setRemoteProperty: set } = await import('runspaces');
      const proxy = ctx.using.amplifier as unknown as Remote<Amplifier>;
      const errors: unknown[] = [];
      try {
        void (proxy as unknown as Amplifier).scale;
      } catch (error) {
        errors.push((error as { code?: string }).code);
      }
      try {
        (proxy as unknown as Amplifier).scale = 9;
      } catch (error) {
        errors.push((error as { code?: string }).code);
      }
      const before = await get(proxy, 'scale');
      await set(proxy, 'scale', 4);
      return { errors, before, doubled: await get(proxy, 'doubled'), unknown: (proxy as Record<string, unknown>).nothingHere, awaited: (await proxy) === proxy };
    }, { using: { amplifier } });
    expect(seen).toEqual({ errors: ['ERR_REMOTE_PROPERTY', 'ERR_REMOTE_PROPERTY'], before: 2, doubled: 8, unknown: undefined, awaited: true });
    expect(amplifier.scale).toBe(4);
  });

  test('the error names the property, the class and the home runspace', async () => {
    await inRunspace(async (rs) => {
      const counter = await rs.invoke(async (ctx) => new ((await import(ctx.using.classes)) as Classes).Counter(), { using: { classes } });
      let thrown: unknown;
      try {
        void (counter as unknown as Counter).count;
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(RemotePropertyError);
      expect(thrown).toMatchObject({ code: 'ERR_REMOTE_PROPERTY', className: 'Counter', property: 'count', homeRunspaceId: rs.id });
      expect(await getRemoteProperty(counter as unknown as Remote<Counter>, 'count')).toBe(0);
      await setRemoteProperty(counter as unknown as Remote<Counter>, 'count', 10);
      expect(await (counter as unknown as Remote<Counter>).increment()).toBe(11);
    });
  });

  test("a proxy cannot reach its home object's prototype chain: __proto__, constructor and prototype are refused", async () => {
    await inRunspace(async (rs) => {
      const counter = await rs.invoke(async (ctx) => new ((await import(ctx.using.classes)) as Classes).Counter(), { using: { classes } });
      const proxy = counter as unknown as Remote<Counter>;
      for (const key of ['__proto__', 'constructor', 'prototype']) {
        await expect(setRemoteProperty(proxy, key as never, {} as never)).rejects.toThrow(/prototype chain/);
        await expect(getRemoteProperty(proxy, key as never)).rejects.toThrow(/prototype chain/);
      }
      // The home object kept its class: its methods still run.
      expect(await proxy.increment()).toBe(1);
    });
  });

  test('a result that cannot cross rejects the call with UncloneableValueError naming it; the proxy keeps working', async () => {
    await inRunspace(async (rs) => {
      const listener = await rs.invoke(async (ctx) => {
        const { Listener: L } = (await import(ctx.using.classes)) as Classes;
        const made = new L('x');
        (made as unknown as { fn: () => unknown }).fn = () => () => 1;
        return made;
      }, { using: { classes } });
      const proxy = listener as unknown as { fn(): Promise<unknown>; onEvent(v: number): Promise<string> };
      await expect(proxy.fn()).rejects.toBeInstanceOf(UncloneableValueError);
      expect(await proxy.onEvent(1)).toBe(`x got 1 in ${rs.id}`);
    });
  });

  test('errors thrown at home reach the caller with their name, message and code', async () => {
    const failing = new Listener('boom');
    (failing as unknown as { fail: () => never }).fail = () => {
      throw Object.assign(new RangeError('out of range at home'), { code: 'E_HOME' });
    };
    const error = await pool.invoke(async (ctx) => {
      try {
        await (ctx.using.failing as unknown as { fail(): Promise<never> }).fail();
        return undefined;
      } catch (caught) {
        return { name: (caught as Error).name, message: (caught as Error).message, code: (caught as { code?: string }).code, isRange: caught instanceof RangeError };
      }
    }, { using: { failing } });
    expect(error).toEqual({ name: 'RangeError', message: 'out of range at home', code: 'E_HOME', isRange: true });
  });
});

describe('classes that cannot take part', () => {
  test('an undecorated subclass of an affinity class is refused with AffinityClassError', async () => {
    await expect(pool.invoke(() => 1, { using: { counter: new SpecialCounter() } })).rejects.toMatchObject({ code: 'ERR_AFFINITY_CLASS', className: 'SpecialCounter' });
  });

  test('an instance of an undecorated class is refused, named with both decorators; with classInstances: plain it crosses as a plain object', async () => {
    const error = await pool.invoke((ctx) => (ctx.using.plain as Plain).x, { using: { plain: new Plain() } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UncloneableValueError);
    expect((error as UncloneableValueError).path).toBe('using.plain');
    expect((error as Error).message).toMatch(/class Plain would arrive without its methods/);
    expect((error as Error).message).toMatch(/@NoRunspaceAffinity\(\)/);
    expect((error as Error).message).toMatch(/@RunspaceAffinity\(\)/);
    await using plainPool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1, classInstances: 'plain' });
    expect(await plainPool.invoke((ctx) => [Object.getPrototypeOf(ctx.using.plain) === Object.prototype, (ctx.using.plain as Plain).x], { using: { plain: new Plain() } })).toEqual([true, 1]);
  });

  test('instances of undecorated classes are refused in args, loop items and results too; a socket cannot cross at all', async () => {
    await expect(pool.invoke((_ctx, p: Plain) => p.x, { args: [new Plain()] })).rejects.toMatchObject({ name: 'UncloneableValueError', path: 'args[0]' });
    const loop = pool.forEachParallel([1, new Plain(), 3] as unknown[], (item) => item, { errorAction: 'continue' });
    expect(await loop.toArray()).toHaveLength(2);
    expect(loop.errors[0]!.index).toBe(1);
    expect(loop.errors[0]!.cause).toBeInstanceOf(UncloneableValueError);
    const result = await pool.invoke(async (ctx) => new ((await import(ctx.using.classes)) as Classes).Plain(), { using: { classes } }).catch((e: unknown) => e);
    expect(result).toBeInstanceOf(UncloneableValueError);
    const { Socket } = await import('node:net');
    const socket = new Socket();
    await expect(pool.invoke((_ctx, s: unknown) => typeof s, { args: [socket] })).rejects.toThrow(/cannot cross to another thread at all/);
    socket.destroy();
    // The session a script block returns by chaining crosses as before.
    expect(await pool.invoke((ctx) => ctx.session.set('chained', 1))).toEqual({});
  });

  test('an anonymous class cannot be decorated', async () => {
    const { runspaceAffinity } = await import('runspaces');
    expect(() => runspaceAffinity((() => class {})())).toThrow(AffinityClassError);
  });
});

describe('when the home runspace dies', () => {
  test('every pending and later call through its proxies rejects with RunspaceBrokenError', async () => {
    await using own = await RunspacePool.open({ maxRunspaces: 1 });
    const gate = new Gate();
    const counter = (await own.invoke(async (ctx) => new ((await import(ctx.using.classes)) as Classes).Counter(), { using: { classes } })) as unknown as Remote<Counter>;
    const home = homeRunspaceId(counter);
    const pending = counter.slowIncrement(gate.buffer);
    await gate.arrivals(1);
    const crashing = counter.crash();
    await expect(pending).rejects.toBeInstanceOf(RunspaceBrokenError);
    await expect(crashing).rejects.toMatchObject({ code: 'ERR_RUNSPACE_BROKEN', runspaceId: home, exitCode: 7 });
    await expect(counter.increment()).rejects.toBeInstanceOf(RunspaceBrokenError);
  });

  test('closing the pool breaks the proxies of objects that lived in it', async () => {
    const own = await RunspacePool.open({ maxRunspaces: 1 });
    const counter = (await own.invoke(async (ctx) => new ((await import(ctx.using.classes)) as Classes).Counter(), { using: { classes } })) as unknown as Remote<Counter>;
    await own.close();
    await expect(counter.increment()).rejects.toBeInstanceOf(RunspaceBrokenError);
  });
});

describe('releasing proxies', () => {
  test('a released proxy frees its object at home; a call in flight still completes; later calls reject', async () => {
    await inRunspace(async (rs) => {
      const [counter, probe] = (await rs.invoke(async (ctx) => {
        const { Counter: C, Probe: P } = (await import(ctx.using.classes)) as Classes;
        return [new C(), new P()];
      }, { using: { classes } })) as unknown as [Remote<Counter>, Remote<Probe>];
      const before = await probe.stats();
      const gate = new Gate();
      const inFlight = counter.slowIncrement(gate.buffer);
      await gate.arrivals(1);
      releaseRemote(counter);
      releaseRemote(counter);
      gate.open();
      expect(await inFlight).toBe(1);
      await expect(counter.increment()).rejects.toBeInstanceOf(ProxyReleasedError);
      // Passing a released proxy on, even back home, is refused the same way.
      await expect(rs.invoke((ctx) => ctx.using.counter, { using: { counter } })).rejects.toBeInstanceOf(ProxyReleasedError);
      // The release travelled on the same link before this call: home has forgotten the counter.
      expect((await probe.stats()).exported).toBe(before.exported - 1);
      releaseRemote(probe);
    });
  });

  test('an idle runspace that holds objects others use is not trimmed', async () => {
    await using own = await RunspacePool.open({ minRunspaces: 0, maxRunspaces: 1, idleTimeout: 20 });
    const counter = (await own.invoke(async (ctx) => new ((await import(ctx.using.classes)) as Classes).Counter(), { using: { classes } })) as unknown as Remote<Counter>;
    const trimmed = new Promise((resolve) => own.once('runspaceClosed', resolve));
    // Many idle timeouts pass while the proxy is held; the object must survive them.
    for (let i = 1; i <= 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      expect(await counter.increment()).toBe(i);
    }
    releaseRemote(counter);
    await trimmed;
    expect(own.stats().runspaces).toBe(0);
  });

  test('affinityStats counts what this thread lends and holds', async () => {
    const before = affinityStats();
    const amplifier = new Amplifier(1);
    await inRunspace(async (rs) => {
      await rs.invoke((ctx) => void ctx.session.set('kept', ctx.using.amplifier), { using: { amplifier } });
      expect(affinityStats().exported).toBe(before.exported + 1);
      const counter = await rs.invoke(async (ctx) => new ((await import(ctx.using.classes)) as Classes).Counter(), { using: { classes } });
      expect(affinityStats().remotes).toBe(before.remotes + 1);
      releaseRemote(counter);
      expect(affinityStats().remotes).toBe(before.remotes);
    });
  });
});

describe('memory', () => {
  test('100k proxies made and dropped in each direction are all given back, and the heaps stay flat', async () => {
    const { execFile } = await import('node:child_process');
    const script = new URL('../fixtures/affinity-memory.js', import.meta.url);
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', script.pathname, '20'], { timeout: 60_000 }, (error, out) => (error ? reject(error) : resolve(out)));
    });
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      proxiesPerDirection: number;
      baseline: { main: object; home: object };
      end: { main: object; home: object };
      heapGrowthMain: number;
      heapGrowthRunspace: number;
    };
    expect(report.proxiesPerDirection).toBe(100_000);
    // Every proxy was collected and its crossing given back: nothing is held on either side.
    expect(report.end).toEqual(report.baseline);
    // 60k proxies each way after the first 40k: a leak of even 20 bytes a proxy would show.
    expect(report.heapGrowthMain).toBeLessThan(1_200_000);
    expect(report.heapGrowthRunspace).toBeLessThan(1_200_000);
  });
});
