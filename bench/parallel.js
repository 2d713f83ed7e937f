/**
 * Parallel loop benchmark: forEachParallel against one pool task per item
 * (piscina, tinypool, workerpool, poolifier) and against a plain loop, in one
 * run, with 2 threads.
 *
 *   trivial   x => x + 1 over 1M items (peers: 100k items, one task each), items/s
 *   cpuBound  400 items of about 1 ms of arithmetic each: speed-up over a plain loop on the main thread
 *   cpuBare   the same items split over 2 bare worker threads that exchange no messages: the machine's ceiling
 *   memory    peak RSS while a loop consumes a generator of 1M and of 10M items, MiB
 *   slowItems   10 async items of 300 ms, throttleLimit 5, on a fresh 5-runspace pool: makespan / ideal (600 ms)
 *   heavyTailed 2,000 CPU-bound items, 1% of them 100x the rest (20 ms against 0.2 ms), 2 runspaces:
 *               makespan / ideal list scheduling (each item in input order on the first free runspace)
 *
 * Every measurement runs in a fresh child process; medians of the repeats.
 *
 *   node bench/parallel.js [--repeats 5] [--json file]
 */
import { writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { adapters, available } from './peers.js';
import { benchArgs, calibrateIterations, fmt, machine, measureInChild, median, serveChild } from './stats.js';

const THREADS = 2;
const LOOP_ITEMS = 1_000_000;
const PEER_ITEMS = 100_000;
const CPU_ITEMS = 400;

const cpuItem = (n, ctx) => {
  let x = 0;
  for (let i = 0; i < ctx.using.iters; i++) x += Math.sqrt(i + n);
  return x;
};

// The ceiling: each bare worker runs its half of the items as soon as told, and reports once.
const BARE_WORKER = `
const { parentPort, workerData: { from, to, iters } } = require('node:worker_threads');
const item = (n) => { let x = 0; for (let i = 0; i < iters; i++) x += Math.sqrt(i + n); return x; };
for (let n = 0; n < 20; n++) item(n);
parentPort.once('message', () => { let x = 0; for (let n = from; n < to; n++) x += item(n); parentPort.postMessage(x); });
parentPort.postMessage('ready');`;

async function bareWorkers(iters) {
  const half = CPU_ITEMS / THREADS;
  const workers = Array.from({ length: THREADS }, (_, t) => new Worker(BARE_WORKER, { eval: true, workerData: { from: t * half, to: (t + 1) * half, iters } }));
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
  const start = performance.now();
  const done = Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
  for (const w of workers) w.postMessage('go');
  await done;
  const elapsed = performance.now() - start;
  await Promise.all(workers.map((w) => w.terminate()));
  return elapsed;
}

function plainLoop(iters) {
  const start = performance.now();
  for (let n = 0; n < CPU_ITEMS; n++) cpuItem(n, { using: { iters } });
  return performance.now() - start;
}

async function openPool() {
  const { RunspacePool } = await import('runspaces');
  return RunspacePool.open({ minRunspaces: THREADS, maxRunspaces: THREADS });
}

const SLOW_ITEMS = 10;
const SLOW_ITEM_MS = 300;
const SLOW_LANES = 5;
const heavyCosts = () => Array.from({ length: 2_000 }, (_, i) => (i % 100 === 37 ? 20 : 0.2));

/** The makespan of list scheduling: each item, in input order, on whichever runspace frees first. */
function listScheduleMs(costs, lanes) {
  const free = new Array(lanes).fill(0);
  for (const cost of costs) {
    const lane = free.indexOf(Math.min(...free));
    free[lane] += cost;
  }
  return Math.max(...free);
}

async function balance(metric) {
  const { RunspacePool } = await import('runspaces');
  if (metric === 'slowItems') {
    const pool = await RunspacePool.open({ minRunspaces: SLOW_LANES, maxRunspaces: SLOW_LANES });
    const start = performance.now();
    const out = await pool
      .forEachParallel(Array.from({ length: SLOW_ITEMS }, (_, i) => i), async (i, ctx) => {
        await new Promise((resolve) => setTimeout(resolve, ctx.using.ms));
        return i;
      }, { throttleLimit: SLOW_LANES, using: { ms: SLOW_ITEM_MS } })
      .toArray();
    const makespan = performance.now() - start;
    if (out.length !== SLOW_ITEMS) throw new Error('lost items');
    return makespan / ((SLOW_ITEMS / SLOW_LANES) * SLOW_ITEM_MS);
  }
  const pool = await RunspacePool.open({ minRunspaces: THREADS, maxRunspaces: THREADS });
  const costs = heavyCosts();
  const busyFor = (ms) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
    return ms;
  };
  await pool.forEachParallel(costs.slice(0, 200), busyFor).toArray(); // warm up
  const start = performance.now();
  await pool.forEachParallel(costs, busyFor, { throttleLimit: THREADS }).toArray();
  return (performance.now() - start) / listScheduleMs(costs, THREADS);
}

async function measure(library, metric) {
  if (metric === 'slowItems' || metric === 'heavyTailed') return balance(metric);
  if (metric === 'trivial' && library !== 'runspaces') {
    const pool = await adapters[library](THREADS);
    await Promise.all(Array.from({ length: 2_000 }, (_, i) => pool.run(i)));
    const start = performance.now();
    const results = await Promise.all(Array.from({ length: PEER_ITEMS }, (_, i) => pool.run(i)));
    if (results[PEER_ITEMS - 1] !== PEER_ITEMS) throw new Error(`${library}: wrong result`);
    return PEER_ITEMS / ((performance.now() - start) / 1000);
  }
  if (metric === 'cpuBare') {
    const iters = calibrateIterations(1);
    plainLoop(iters); // warm up
    return plainLoop(iters) / (await bareWorkers(iters));
  }
  const pool = await openPool();
  if (metric === 'trivial') {
    await pool.forEachParallel(Array.from({ length: 10_000 }, (_, i) => i), (x) => x + 1).toArray(); // warm up
    const start = performance.now();
    let sum = 0;
    for await (const y of pool.forEachParallel(Array.from({ length: LOOP_ITEMS }, (_, i) => i), (x) => x + 1)) sum += y;
    const rate = LOOP_ITEMS / ((performance.now() - start) / 1000);
    if (sum !== (LOOP_ITEMS * (LOOP_ITEMS + 1)) / 2) throw new Error('wrong sum');
    return rate;
  }
  if (metric === 'cpuBound') {
    const iters = calibrateIterations(1);
    const items = Array.from({ length: CPU_ITEMS }, (_, i) => i);
    await pool.forEachParallel(items.slice(0, 20), cpuItem, { using: { iters } }).toArray(); // warm up
    const plain = plainLoop(iters);
    const start = performance.now();
    await pool.forEachParallel(items, cpuItem, { using: { iters } }).toArray();
    return plain / (performance.now() - start);
  }
  // memory: peak RSS while consuming a generator of `count` items
  const count = metric === 'memory10M' ? 10 * LOOP_ITEMS : LOOP_ITEMS;
  function* numbers() {
    for (let i = 0; i < count; i++) yield i;
  }
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  let seen = 0;
  for await (const _ of pool.forEachParallel(numbers(), (x) => x)) {
    if (++seen % 65_536 === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  clearInterval(sampler);
  if (seen !== count) throw new Error('lost items');
  return Math.max(peak, process.memoryUsage().rss) / 2 ** 20;
}

export const METRICS = {
  trivial: { unit: 'items/s', better: 'higher', peers: true },
  cpuBound: { unit: '× a plain loop', better: 'higher', peers: false },
  cpuBare: { unit: '× a plain loop', better: 'higher', peers: false },
  memory1M: { unit: 'MiB peak RSS', better: 'lower', peers: false },
  memory10M: { unit: 'MiB peak RSS', better: 'lower', peers: false },
  slowItems: { unit: '× ideal makespan', better: 'lower', peers: false },
  heavyTailed: { unit: '× ideal makespan', better: 'lower', peers: false },
};

export async function runParallelBenchmark({ repeats = 5, log = console.log } = {}) {
  const peers = [];
  for (const name of Object.keys(adapters)) {
    if (name === 'runspaces') continue;
    if (await available(name)) peers.push(name);
    else log(`note: ${name} is not installed; skipped`);
  }
  const samples = {};
  for (let r = 0; r < repeats; r++) {
    for (const [metric, { peers: withPeers }] of Object.entries(METRICS)) {
      const libraries = withPeers ? ['runspaces', ...peers] : ['runspaces'];
      for (const library of r % 2 === 0 ? libraries : [...libraries].reverse()) {
        ((samples[metric] ??= {})[library] ??= []).push(await measureInChild(import.meta.url, library, metric, { log }));
      }
    }
    log(`  parallel benchmark: repeat ${r + 1}/${repeats} done`);
  }
  const medians = {};
  for (const [metric, byLibrary] of Object.entries(samples)) {
    medians[metric] = Object.fromEntries(Object.entries(byLibrary).map(([library, values]) => [library, median(values)]));
  }
  return { machine: machine(), threads: THREADS, loopItems: LOOP_ITEMS, peerItems: PEER_ITEMS, repeats, samples, medians };
}

export function parallelTable(report) {
  const m = report.medians;
  const ours = m.trivial.runspaces;
  const lines = [
    '| measure | runspaces | one task per item |',
    '|---|---:|---|',
    `| trivial items, items/s | **${fmt(ours)}** | ${Object.entries(m.trivial).filter(([l]) => l !== 'runspaces').map(([l, v]) => `${l} ${fmt(v)} (${(ours / v).toFixed(1)}×)`).join(', ')} |`,
    `| ~1 ms CPU-bound items, speed-up over a plain loop | **${m.cpuBound.runspaces.toFixed(2)}×** | 2 bare workers, no messages: ${m.cpuBare.runspaces.toFixed(2)}× |`,
    `| peak RSS, 1M-item generator | ${fmt(m.memory1M.runspaces)} MiB | |`,
    `| peak RSS, 10M-item generator | ${fmt(m.memory10M.runspaces)} MiB | |`,
    `| 10 × 300 ms async items, throttleLimit 5, fresh 5-runspace pool: makespan | **${m.slowItems.runspaces.toFixed(2)}×** ideal | |`,
    `| heavy-tailed CPU-bound items (1% cost 100×), 2 runspaces: makespan | **${m.heavyTailed.runspaces.toFixed(2)}×** ideal list scheduling | |`,
  ];
  return lines.join('\n');
}

if (!(await serveChild(measure)) && import.meta.url === `file://${process.argv[1]}`) {
  const { repeats, json } = benchArgs();
  const report = await runParallelBenchmark({ repeats });
  console.log(`\nParallel loop benchmark on ${report.machine}; ${report.threads} runspaces; medians of ${report.repeats} runs.`);
  console.log('In parentheses: how many times more items per second the loop moves than that peer running one task per item.\n');
  console.log(parallelTable(report));
  if (json !== undefined) writeFileSync(json, JSON.stringify(report, null, 2));
}
