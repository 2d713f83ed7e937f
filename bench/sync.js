/**
 * Lock benchmark: runspaces' Mutex and Semaphore against a bare three-state
 * Atomics mutex (the floor any shared-memory lock in JS can reach) and
 * against async-mutex (what Node code uses today), in one run.
 *
 *   uncontended   lock+unlock in one worker, ns per pair (lower is better)
 *   contended     2 workers hammering one lock, M pairs/s in total (higher is better), 5 rounds per repeat
 *   asyncFree     await acquire + release on the main thread, free lock, M pairs/s
 *   handoff       a lock passed back and forth between 2 workers, µs per handoff
 *   abandoned     runspace terminated while holding; ms until a waiter owns it
 *
 *   node bench/sync.js [--repeats 5]
 */
import { Mutex, RunspacePool, Semaphore } from 'runspaces';
import { fmt, machine, median } from './stats.js';

/**
 * One script block per lock class, written the way a user would write it: a
 * call site shared by several classes would go polymorphic in V8 and charge
 * whichever ran second. The fair and default mutex are one class, so they
 * share the mutex loop (identical sources are one script block anyway). The bare mutex is Drepper's three-state futex
 * mutex with no owner and no recursion: the floor for a shared-memory lock
 * in JavaScript.
 */
export const loops = {
  bare: (ctx, op, n, index) => {
    const cells = new Int32Array(ctx.using.lock);
    const whose = new Int32Array(ctx.using.turn);
    const lock = () => {
      if (Atomics.compareExchange(cells, 0, 0, 1) === 0) return;
      for (let i = 0; i < 100; i++) if (Atomics.load(cells, 0) === 0 && Atomics.compareExchange(cells, 0, 0, 1) === 0) return;
      let c = Atomics.exchange(cells, 0, 2);
      while (c !== 0) { Atomics.wait(cells, 0, 2); c = Atomics.exchange(cells, 0, 2); }
    };
    const unlock = () => { if (Atomics.exchange(cells, 0, 0) === 2) Atomics.notify(cells, 0, 1); };
    const gate = new Int32Array(ctx.using.start);
    Atomics.add(gate, 1, 1);
    Atomics.wait(gate, 0, 0);
    const t0 = performance.now();
    if (op === 'loop') for (let i = 0; i < n; i++) { lock(); unlock(); }
    else for (let i = 0; i < n; i++) { while (Atomics.load(whose, 0) !== index); lock(); Atomics.store(whose, 0, 1 - index); unlock(); }
    return performance.now() - t0;
  },
  mutex: (ctx, op, n, index) => {
    const m = ctx.using.lock;
    const whose = new Int32Array(ctx.using.turn);
    const gate = new Int32Array(ctx.using.start);
    Atomics.add(gate, 1, 1);
    Atomics.wait(gate, 0, 0);
    const t0 = performance.now();
    if (op === 'loop') for (let i = 0; i < n; i++) { m.waitOne(); m.releaseMutex(); }
    else for (let i = 0; i < n; i++) { while (Atomics.load(whose, 0) !== index); m.waitOne(); Atomics.store(whose, 0, 1 - index); m.releaseMutex(); }
    return performance.now() - t0;
  },
  semaphore: (ctx, op, n, index) => {
    const s = ctx.using.lock;
    const whose = new Int32Array(ctx.using.turn);
    const gate = new Int32Array(ctx.using.start);
    Atomics.add(gate, 1, 1);
    Atomics.wait(gate, 0, 0);
    const t0 = performance.now();
    if (op === 'loop') for (let i = 0; i < n; i++) { s.waitOne(); s.release(); }
    else for (let i = 0; i < n; i++) { while (Atomics.load(whose, 0) !== index); s.waitOne(); Atomics.store(whose, 0, 1 - index); s.release(); }
    return performance.now() - t0;
  },
};

let pool;
function makeLock(kind) {
  if (kind === 'bare') return new SharedArrayBuffer(4);
  if (kind === 'fair') return new Mutex(false, { fair: true });
  return kind === 'mutex' ? new Mutex() : new Semaphore(1, 1);
}

async function inRunspaces(count, kind, op, iterations) {
  const start = new Int32Array(new SharedArrayBuffer(8));
  const using = { lock: makeLock(kind), start: start.buffer, turn: new SharedArrayBuffer(4) };
  const loop = kind === 'fair' ? loops.mutex : loops[kind];
  const runs = Array.from({ length: count }, (_, index) => pool.invoke(loop, { args: [op, iterations, index], using }));
  while (Atomics.load(start, 1) < count) await new Promise((r) => setTimeout(r, 1));
  const t0 = performance.now();
  Atomics.store(start, 0, 1);
  Atomics.notify(start, 0);
  const each = await Promise.all(runs);
  return { ms: performance.now() - t0, each };
}

async function uncontended(kind) {
  const n = 2_000_000;
  const { each } = await inRunspaces(1, kind, 'loop', n);
  return (each[0] * 1e6) / n;
}

async function contended(kind) {
  const n = 1_000_000;
  const { ms } = await inRunspaces(2, kind, 'loop', n);
  return (2 * n) / (ms / 1000) / 1e6;
}

async function handoff(kind) {
  const n = 20_000;
  const { ms } = await inRunspaces(2, kind, 'pingpong', n);
  return (ms * 1000) / (2 * n);
}

async function asyncFree(kind) {
  const n = 1_000_000;
  let acquire;
  if (kind === 'async-mutex') {
    const { Mutex } = await import('async-mutex');
    const m = new Mutex();
    acquire = async () => { const release = await m.acquire(); release(); };
  } else {
    const m = new Mutex();
    acquire = async () => { await m.acquire(); m.releaseMutex(); };
  }
  for (let i = 0; i < 100_000; i++) await acquire();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await acquire();
  return n / ((performance.now() - t0) / 1000) / 1e6;
}

async function abandoned() {
  const recycling = await RunspacePool.open({ maxRunspaces: 1, cancelGracePeriod: 0 });
  const m = new Mutex();
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const controller = new AbortController();
  const held = recycling.invoke((ctx) => {
    ctx.using.m.waitOne();
    const g = new Int32Array(ctx.using.gate);
    Atomics.store(g, 0, 1);
    Atomics.notify(g, 0);
    for (;;);
  }, { using: { m, gate: gate.buffer }, signal: controller.signal }).catch(() => undefined);
  while (Atomics.load(gate, 0) === 0) await new Promise((r) => setTimeout(r, 1));
  const waiting = m.acquire().catch((e) => e);
  const t0 = performance.now();
  controller.abort(); // ignored by the loop: the runspace is terminated after the 0 ms grace period
  await waiting;
  const ms = performance.now() - t0;
  m.releaseMutex();
  await held;
  await recycling.close();
  return ms;
}

export async function runSyncBenchmark({ repeats = 5, log = console.log } = {}) {
  pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
  const samples = {};
  const add = (metric, subject, value) => ((samples[metric] ??= {})[subject] ??= []).push(value);
  for (let r = 0; r < repeats; r++) {
    for (const lock of ['bare', 'mutex', 'fair', 'semaphore']) {
      add('uncontended', lock, await uncontended(lock));
      add('handoff', lock, await handoff(lock));
    }
    // Contended throughput swings by 2x from one run to the next (which thread
    // keeps winning the lock is up to the scheduler): five rounds per repeat,
    // the locks alternating, so the medians compare like with like.
    const locks = ['bare', 'mutex', 'fair', 'semaphore'];
    for (let round = 0; round < 5; round++) {
      for (const lock of round % 2 === 0 ? locks : [...locks].reverse()) add('contended', lock, await contended(lock));
    }
    for (const kind of ['async-mutex', 'runspaces']) add('asyncFree', kind, await asyncFree(kind));
    add('abandoned', 'mutex', await abandoned());
    log(`  sync benchmark: repeat ${r + 1}/${repeats} done`);
  }
  await pool.close();
  const medians = Object.fromEntries(Object.entries(samples).map(([metric, bySubject]) =>
    [metric, Object.fromEntries(Object.entries(bySubject).map(([s, v]) => [s, median(v)]))]));
  return { machine: machine(), repeats, medians, samples };
}

export function syncTable({ medians: m }) {
  return [
    '| metric | bare 3-state mutex | runspaces Mutex | runspaces Mutex (fair) | runspaces Semaphore(1,1) | async-mutex |',
    '|---|---:|---:|---:|---:|---:|',
    `| uncontended lock+unlock in a worker (ns, lower is better) | ${fmt(m.uncontended.bare)} | ${fmt(m.uncontended.mutex)} (${(m.uncontended.mutex / m.uncontended.bare).toFixed(2)}× bare) | ${fmt(m.uncontended.fair)} | ${fmt(m.uncontended.semaphore)} | |`,
    `| 2 workers contending (M pairs/s, higher is better) | ${fmt(m.contended.bare, 2)} | ${fmt(m.contended.mutex, 2)} (${(m.contended.mutex / m.contended.bare).toFixed(2)}× bare) | ${fmt(m.contended.fair, 2)} (${(m.contended.fair / m.contended.mutex).toFixed(2)}× unfair) | ${fmt(m.contended.semaphore, 2)} | |`,
    `| handoff between 2 workers (µs, lower is better) | ${fmt(m.handoff.bare, 2)} | ${fmt(m.handoff.mutex, 2)} | ${fmt(m.handoff.fair, 2)} | ${fmt(m.handoff.semaphore, 2)} | |`,
    `| async acquire+release, free lock, main thread (M/s, higher is better) | | ${fmt(m.asyncFree.runspaces, 2)} (${(m.asyncFree.runspaces / m.asyncFree['async-mutex']).toFixed(1)}× async-mutex) | | | ${fmt(m.asyncFree['async-mutex'], 2)} |`,
    `| abandoned-lock recovery: terminate to waiter owning (ms) | | ${fmt(m.abandoned.mutex, 2)} | | | |`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const flag = process.argv.indexOf('--repeats');
  const report = await runSyncBenchmark({ repeats: flag > 0 ? Number(process.argv[flag + 1]) : 5 });
  console.log(`\nLock benchmark on ${report.machine}; medians of ${report.repeats} runs.\n`);
  console.log(syncTable(report));
}
