import { Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import {
  InvalidArgumentError,
  InvalidOperationError,
  OperationCancelledError,
  ParallelItemError,
  ParallelLoopError,
  RunspacePool,
  TimeoutError,
  UsingFunctionError,
  parallel,
  type ParallelContext,
  type StreamRecord,
} from 'runspaces';
import { Gate } from '../helpers.js';

function* counting(n: number, pulled: { count: number }): Generator<number> {
  for (let i = 0; i < n; i++) {
    pulled.count++;
    yield i;
  }
}

/** Counts the items that ran, then spins until the loop cancels it. */
const spinUntilCancelled = (item: number, ctx: ParallelContext<{ ran: SharedArrayBuffer; quick: number }>): number => {
  Atomics.add(new Int32Array(ctx.using.ran), 0, 1);
  if (item < ctx.using.quick) return item;
  while (!ctx.cancellationRequested);
  throw ctx.signal.reason;
};

describe('forEachParallel: inputs and outputs', () => {
  test('every item of an array runs exactly once and every output arrives', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const n = 100_000;
    const items = Array.from({ length: n }, (_, i) => i);
    const outputs = await pool.forEachParallel(items, (x: number) => x * 2).toArray();
    expect(outputs).toHaveLength(n);
    const seen = new Uint8Array(n);
    for (const value of outputs) seen[value / 2]++;
    expect(seen.every((count) => count === 1)).toBe(true);
  });

  test('sync iterables, async iterables and object-mode streams are all inputs', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const double = (x: number) => x * 2;
    const pulled = { count: 0 };
    async function* slowly(): AsyncGenerator<number> {
      for (let i = 0; i < 50; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        yield i;
      }
    }
    const expected = Array.from({ length: 50 }, (_, i) => i * 2);
    expect(await pool.forEachParallel(counting(50, pulled), double, { ordered: true }).toArray()).toEqual(expected);
    expect(await pool.forEachParallel(new Set(Array.from({ length: 50 }, (_, i) => i)), double, { ordered: true }).toArray()).toEqual(expected);
    expect(await pool.forEachParallel(slowly(), double, { ordered: true }).toArray()).toEqual(expected);
    const stream = Readable.from(Array.from({ length: 50 }, (_, i) => i), { objectMode: true });
    expect(await pool.forEachParallel(stream, double, { ordered: true }).toArray()).toEqual(expected);
  });

  test('ctx carries the item index, using values, and the runspace session', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const outputs = await pool.forEachParallel(['a', 'b', 'c'], (item: string, ctx) => {
      const seen = (ctx.session.get<number>('seen') ?? 0) + 1;
      ctx.session.set('seen', seen);
      return `${ctx.index}:${item}${ctx.using.suffix}`;
    }, { using: { suffix: '!' }, ordered: true }).toArray();
    expect(outputs).toEqual(['0:a!', '1:b!', '2:c!']);
  });

  test('async item functions are awaited', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const outputs = await pool.forEachParallel([1, 2, 3], async (x: number) => {
      await new Promise((resolve) => setImmediate(resolve));
      return x + 1;
    }, { ordered: true }).toArray();
    expect(outputs).toEqual([2, 3, 4]);
  });

  test('an exported module function can be the loop body', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const module = new URL('../fixtures/loop-body.js', import.meta.url);
    const outputs = await pool.forEachParallel([1, 2, 3], { module, export: 'square' }, { ordered: true }).toArray();
    expect(outputs).toEqual([1, 4, 9]);
  });

  test('ordered: outputs come in input order even when the first item finishes last', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const items = Array.from({ length: 2000 }, (_, i) => i);
    const outputs = await pool.forEachParallel(items, (x: number) => {
      if (x === 0) {
        const end = Date.now() + 50;
        while (Date.now() < end);
      }
      return x;
    }, { ordered: true, throttleLimit: 2 }).toArray();
    expect(outputs).toEqual(items);
  });

  test('input is pulled only as fast as it is consumed', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const pulled = { count: 0 };
    let consumed = 0;
    let mostAhead = 0;
    for await (const _ of pool.forEachParallel(counting(300_000, pulled), (x: number) => x, { throttleLimit: 2, highWaterMark: 1000 })) {
      consumed++;
      mostAhead = Math.max(mostAhead, pulled.count - consumed);
    }
    expect(consumed).toBe(300_000);
    // The high-water mark, plus at most two chunks per lane in flight (chunks hold at most 8192 items).
    expect(mostAhead).toBeLessThanOrEqual(1000 + 2 * 2 * 8192 + 8192);
  });

  test('parallel() runs on a shared default pool', async () => {
    expect(await parallel([1, 2, 3], (x: number) => x * 10, { ordered: true }).toArray()).toEqual([10, 20, 30]);
  });

  test('a loop is iterated once', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const loop = pool.forEachParallel([1], (x: number) => x);
    await loop.toArray();
    expect(() => loop[Symbol.asyncIterator]()).toThrow(InvalidOperationError);
  });
});

describe('forEachParallel: throttle and runspaces', () => {
  test('no more than throttleLimit items run at once, even in a bigger pool', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 4, maxRunspaces: 4 });
    const gate = new Gate();
    const loop = pool.forEachParallel(Array.from({ length: 20 }, (_, i) => i), (item: number, ctx: ParallelContext<{ gate: SharedArrayBuffer }>) => {
      const cells = new Int32Array(ctx.using.gate);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      Atomics.wait(cells, 0, 0);
      return item;
    }, { throttleLimit: 2, using: { gate: gate.buffer } });
    const all = loop.toArray();
    await gate.arrivals(2);
    // Two lanes: only two runspaces are busy, and no item waits in the pool's line.
    expect(pool.stats().busy).toBe(2);
    expect(pool.stats().queued).toBe(0);
    expect(gate.arrived).toBe(2);
    gate.open();
    expect((await all).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  test('useNewRunspace runs every item in a runspace of its own, closed after it', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const closed: number[] = [];
    pool.on('runspaceClosed', (info) => closed.push(info.runspaceId));
    const outputs = await pool.forEachParallel([1, 2, 3, 4, 5], (item: number, ctx) => {
      const before = ctx.session.get('touched');
      ctx.session.set('touched', true);
      return { runspaceId: ctx.runspaceId, before };
    }, { useNewRunspace: true, throttleLimit: 2 }).toArray();
    const ids = outputs.map((o) => o.runspaceId);
    expect(new Set(ids).size).toBe(5);
    expect(outputs.every((o) => o.before === undefined)).toBe(true);
    await pool.close();
    for (const id of ids) expect(closed).toContain(id);
  });
});

describe('forEachParallel: errors and streams', () => {
  test('by default a loop whose items failed delivers every output, then throws ParallelLoopError listing every failure', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const loop = pool.forEachParallel(Array.from({ length: 20 }, (_, i) => i), (x: number) => {
      if (x % 7 === 3) throw new RangeError(`bad ${x}`);
      return x;
    });
    const outputs: number[] = [];
    const error = await (async () => {
      for await (const output of loop) outputs.push(output);
    })().catch((e: unknown) => e);
    expect(outputs.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i).filter((x) => x % 7 !== 3));
    expect(error).toBeInstanceOf(ParallelLoopError);
    expect((error as ParallelLoopError).code).toBe('ERR_PARALLEL_LOOP');
    expect((error as ParallelLoopError).errors.map((e) => e.index).sort((a, b) => a - b)).toEqual([3, 10, 17]);
    expect((error as ParallelLoopError).completed).toBe(20);
    expect((error as Error).message).toMatch(/3 of 20 items/);
    // toArray() and parallel() are not silent either.
    await expect(pool.forEachParallel([1, 2], (x: number) => { if (x === 2) throw new Error('two'); return x; }).toArray()).rejects.toBeInstanceOf(ParallelLoopError);
    await expect(parallel([1, 2], (x: number) => { if (x === 2) throw new Error('two'); return x; }).toArray()).rejects.toBeInstanceOf(ParallelLoopError);
    // A loop where nothing failed ends normally.
    expect(await pool.forEachParallel([1, 2], (x: number) => x, { ordered: true }).toArray()).toEqual([1, 2]);
  });

  test("errorAction 'continue': a failing item is an error record with its index, and the loop goes on", async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const records: StreamRecord[] = [];
    const loop = pool.forEachParallel(Array.from({ length: 100 }, (_, i) => i), (x: number) => {
      if (x % 10 === 3) throw new RangeError(`bad ${x}`);
      return x;
    }, { onRecord: (record) => records.push(record), errorAction: 'continue' });
    const outputs = await loop.toArray();
    expect(outputs.sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i).filter((x) => x % 10 !== 3));
    expect(loop.errors.map((e) => e.index).sort((a, b) => a - b)).toEqual([3, 13, 23, 33, 43, 53, 63, 73, 83, 93]);
    for (const error of loop.errors) {
      expect(error).toBeInstanceOf(ParallelItemError);
      expect(error.code).toBe('ERR_PARALLEL_ITEM');
      expect(error.cause).toBeInstanceOf(RangeError);
      expect((error.cause as Error).message).toBe(`bad ${error.index}`);
    }
    const errorRecords = records.filter((r) => r.stream === 'error');
    expect(errorRecords.map((r) => r.index).sort((a, b) => a! - b!)).toEqual(loop.errors.map((e) => e.index).sort((a, b) => a - b));
    expect(loop.completed).toBe(100);
  });

  test("errorAction 'stop': the first failure ends the loop with ParallelItemError", async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const ran = new SharedArrayBuffer(4);
    const error = await pool.forEachParallel(Array.from({ length: 10_000 }, (_, i) => i), (x: number, ctx: ParallelContext<{ ran: SharedArrayBuffer }>) => {
      Atomics.add(new Int32Array(ctx.using.ran), 0, 1);
      if (x === 5) throw new Error('five');
      return x;
    }, { errorAction: 'stop', throttleLimit: 1, using: { ran } }).toArray().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ParallelItemError);
    expect(error).toMatchObject({ index: 5, cause: { message: 'five' } });
    // One lane: the chunk stopped at its failing item, and nothing after it started.
    expect(Atomics.load(new Int32Array(ran), 0)).toBeLessThan(10_000);
  });

  test('stream records reach onRecord tagged with their item, progress reaches onProgress', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const records: StreamRecord[] = [];
    const progress: number[] = [];
    await pool.forEachParallel([0, 1, 2, 3], (x: number, ctx) => {
      ctx.writeWarning(`warn ${x}`);
      ctx.writeInformation({ x }, ['tag']);
      ctx.writeProgress({ activity: 'loop', percentComplete: x * 25 });
      return x;
    }, { onRecord: (r) => records.push(r), onProgress: (r) => progress.push(r.index!) }).toArray();
    const warnings = records.filter((r) => r.stream === 'warning');
    expect(warnings.map((r) => [r.index, r.stream === 'warning' && r.message]).sort()).toEqual([[0, 'warn 0'], [1, 'warn 1'], [2, 'warn 2'], [3, 'warn 3']]);
    expect(records.filter((r) => r.stream === 'information')).toHaveLength(4);
    expect(records.some((r) => r.stream === 'progress')).toBe(false);
    expect(progress.sort()).toEqual([0, 1, 2, 3]);
  });

  test("without handlers, records go to the pool's record event", async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const records: StreamRecord[] = [];
    pool.on('record', (r) => records.push(r));
    await pool.forEachParallel([7], (x: number, ctx) => ctx.writeVerbose(`v${x}`)).toArray();
    expect(records).toMatchObject([{ stream: 'verbose', message: 'v7', index: 0 }]);
  });

  test('an item whose input cannot be cloned fails alone, named by its index', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const items: unknown[] = [1, 2, 3, () => 4, 5];
    const loop = pool.forEachParallel(items, (x: unknown) => x, { errorAction: 'continue' });
    const outputs = await loop.toArray();
    expect(outputs.sort()).toEqual([1, 2, 3, 5]);
    expect(loop.errors).toHaveLength(1);
    expect(loop.errors[0]).toMatchObject({ index: 3, cause: { name: 'UncloneableValueError', path: 'input[3]' } });
  });

  test('an output that cannot be cloned fails its item alone', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const loop = pool.forEachParallel([1, 2, 3], (x: number) => (x === 2 ? { fn: () => x } : x), { errorAction: 'continue' });
    expect((await loop.toArray()).sort()).toEqual([1, 3]);
    expect(loop.errors).toHaveLength(1);
    expect(loop.errors[0]).toMatchObject({ index: 1, cause: { name: 'UncloneableValueError', path: 'the output of item 1.fn' } });
  });

  test('a loop body that cannot load ends the loop with its error', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const module = new URL('../fixtures/loop-body.js', import.meta.url);
    const error = await pool.forEachParallel([1, 2], { module, export: 'missing' }).toArray().catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ModuleExportError', code: 'ERR_MODULE_EXPORT' });
  });
});

describe('forEachParallel: stopping', () => {
  test('a timeout cancels running items, starts no more, delivers results so far, then throws TimeoutError', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const ran = new SharedArrayBuffer(4);
    const pulled = { count: 0 };
    const outputs: number[] = [];
    let error: unknown;
    try {
      for await (const x of pool.forEachParallel(counting(1000, pulled), spinUntilCancelled, { using: { ran, quick: 5 }, timeout: 100, throttleLimit: 2 })) {
        outputs.push(x);
      }
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ code: 'ERR_TIMEOUT', timeout: 100 });
    expect(outputs.sort()).toEqual([0, 1, 2, 3, 4]);
    // The quick items, then at most one spinning item per lane.
    expect(Atomics.load(new Int32Array(ran), 0)).toBeLessThanOrEqual(7);
    expect(pool.stats().busy).toBe(0);
  });

  test('an abort signal stops the loop with OperationCancelledError', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const ran = new SharedArrayBuffer(4);
    const controller = new AbortController();
    const loop = pool.forEachParallel(Array.from({ length: 100 }, (_, i) => i), spinUntilCancelled, {
      using: { ran, quick: 0 }, signal: controller.signal, throttleLimit: 2,
    });
    const iterator = loop[Symbol.asyncIterator]();
    const first = iterator.next();
    while (Atomics.load(new Int32Array(ran), 0) === 0) await new Promise((resolve) => setImmediate(resolve));
    controller.abort(new Error('enough'));
    const error = await first.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationCancelledError);
    expect((error as OperationCancelledError).reason).toMatchObject({ message: 'enough' });
  });

  test('an already-aborted signal runs nothing', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const pulled = { count: 0 };
    const error = await pool.forEachParallel(counting(10, pulled), (x: number) => x, { signal: AbortSignal.abort() }).toArray().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationCancelledError);
    expect(pulled.count).toBe(0);
  });

  test('break cancels outstanding items and gives their runspaces back', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const ran = new SharedArrayBuffer(4);
    let finallyRan = false;
    function* input(): Generator<number> {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        finallyRan = true;
      }
    }
    for await (const x of pool.forEachParallel(input(), spinUntilCancelled, { using: { ran, quick: 1 }, throttleLimit: 2 })) {
      expect(x).toBe(0);
      break;
    }
    expect(finallyRan).toBe(true);
    expect(pool.stats().busy).toBe(0);
    expect(await pool.invoke(() => 'free')).toBe('free');
  });

  test('loop.stop() ends iteration after the outputs already produced', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const ran = new SharedArrayBuffer(4);
    const loop = pool.forEachParallel(Array.from({ length: 50 }, (_, i) => i), spinUntilCancelled, { using: { ran, quick: 1 }, throttleLimit: 1 });
    const outputs: number[] = [];
    for await (const x of loop) {
      outputs.push(x);
      await loop.stop();
    }
    expect(outputs).toEqual([0]);
    expect(loop.finished).toBe(true);
  });

  test('closing the pool under a loop ends it with PoolClosedError', async () => {
    const pool = await RunspacePool.open({ maxRunspaces: 1 });
    const gate = new Gate();
    const loop = pool.forEachParallel(Array.from({ length: 10 }, (_, i) => i), (x: number, ctx: ParallelContext<{ gate: SharedArrayBuffer }>) => {
      const cells = new Int32Array(ctx.using.gate);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      Atomics.wait(cells, 0, 0);
      return x;
    }, { using: { gate: gate.buffer }, throttleLimit: 2 });
    const all = loop.toArray().catch((e: unknown) => e);
    await gate.arrivals(1);
    const closed = pool.close();
    gate.open();
    await closed;
    expect(await all).toMatchObject({ name: 'PoolClosedError', code: 'ERR_POOL_CLOSED' });
  });
});

describe('forEachParallel: bad input', () => {
  test('invalid options throw before any item starts', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 1 });
    const pulled = { count: 0 };
    const fn = (x: number) => x;
    const bad: [Record<string, unknown>, string][] = [
      [{ throttleLimit: 0 }, 'throttleLimit'],
      [{ throttleLimit: 1.5 }, 'throttleLimit'],
      [{ throttleLimit: -1 }, 'throttleLimit'],
      [{ timeout: -5 }, 'timeout'],
      [{ asJob: true, timeout: 1000 }, 'timeout'],
      [{ errorAction: 'ignore' }, 'errorAction'],
      [{ onRecord: 'log' }, 'onRecord'],
      [{ highWaterMark: 0 }, 'highWaterMark'],
      [{ using: [1, 2] }, 'using'],
    ];
    for (const [options, argument] of bad) {
      expect(() => pool.forEachParallel(counting(5, pulled), fn, options as never)).toThrow(InvalidArgumentError);
      try {
        pool.forEachParallel(counting(5, pulled), fn, options as never);
      } catch (error) {
        expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', argument });
      }
    }
    expect(() => pool.forEachParallel([1], fn, { using: { f: () => 1 } as never })).toThrow(UsingFunctionError);
    expect(() => pool.forEachParallel('abc' as never, fn)).toThrow(InvalidArgumentError);
    expect(() => pool.forEachParallel(42 as never, fn)).toThrow(InvalidArgumentError);
    expect(() => pool.forEachParallel([1], 'x => x' as never)).toThrow(InvalidArgumentError);
    expect(pulled.count).toBe(0);
  });

  test('a loop on a pool that is not open is refused', async () => {
    const pool = new RunspacePool({ maxRunspaces: 1 });
    expect(() => pool.forEachParallel([1], (x: number) => x)).toThrow(expect.objectContaining({ code: 'ERR_POOL_STATE' }));
    await pool.open();
    await pool.close();
    expect(() => pool.forEachParallel([1], (x: number) => x)).toThrow(expect.objectContaining({ code: 'ERR_POOL_CLOSED' }));
  });
});

describe('forEachParallel: slow items on a fresh pool', () => {
  test('with throttleLimit N and N runspaces, the first N items start at once on N runspaces, in input order; the rest wait for a free one', async () => {
    await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 5 });
    const gate = new Gate();
    const log = new Int32Array(new SharedArrayBuffer(4 * 20));
    const loop = pool.forEachParallel(Array.from({ length: 10 }, (_, i) => i), (item: number, ctx) => {
      const cells = new Int32Array(ctx.using.gate as SharedArrayBuffer);
      const entries = new Int32Array(ctx.using.log as SharedArrayBuffer);
      const at = Atomics.add(cells, 1, 1);
      entries[at * 2] = item;
      entries[at * 2 + 1] = ctx.runspaceId;
      Atomics.notify(cells, 1);
      Atomics.wait(cells, 0, 0);
      return item;
    }, { throttleLimit: 5, using: { gate: gate.buffer, log: log.buffer } });
    const outputs = loop.toArray();
    await Promise.race([gate.arrivals(5), new Promise((_, reject) => setTimeout(() => reject(new Error('the first 5 items did not all start')), 20_000))]);
    const started = Array.from({ length: 5 }, (_, i) => ({ item: log[i * 2]!, runspace: log[i * 2 + 1]! }));
    expect(started.map((s) => s.item).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
    expect(new Set(started.map((s) => s.runspace)).size).toBe(5);
    expect(gate.arrived).toBe(5);
    gate.open();
    expect((await outputs).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });
});

describe('awaiting a loop', () => {
  // A newcomer's first loop: `await pool.forEachParallel(...)` used to give back the loop object
  // at once, items still running, and the code after it went on without the outputs.
  test('await collects every output, as toArray does; awaiting again gives the same array', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    const loop = pool.forEachParallel([1, 2, 3, 4], (n: number) => n * n, { ordered: true });
    const outputs = await loop;
    expect(outputs).toEqual([1, 4, 9, 16]);
    expect(loop.finished).toBe(true);
    expect(await loop).toBe(outputs);
  });

  test('await throws as iterating would', async () => {
    await using pool = await RunspacePool.open({ maxRunspaces: 2 });
    await expect(pool.forEachParallel([1, 2], (n: number) => {
      if (n === 2) throw new Error('item two failed');
      return n;
    })).rejects.toThrow(ParallelLoopError);
  });
});
