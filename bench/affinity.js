/**
 * Class affinity benchmark: what a call through a proxy costs, against a
 * plain comlink call (the library Node code uses today for calls into a
 * worker) on the same machine, in the same run; and what a method of a copied
 * (NoRunspaceAffinity) instance costs against a local call.
 *
 *   to runspace     main thread awaits a method of an object living in a runspace, µs per call
 *   from runspace   a runspace awaits a method of an object living on the main thread, µs per call
 *   copied method   a runspace calls a method of a copied instance vs. of an instance it made, ns per call
 *
 *   node bench/affinity.js [--repeats 5] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { MessageChannel, Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { RunspacePool } from 'runspaces';
import { Step, Tally } from './workers/affinity-classes.js';
import { awaitedCallMicros, benchArgs, fmt, machine, measureInChild, median, serveChild } from './stats.js';

const CALLS = 20_000;
const classes = new URL('./workers/affinity-classes.js', import.meta.url).href;
const comlinkWorker = new URL('./workers/comlink-tally.js', import.meta.url);

const callLoop = (call) => awaitedCallMicros(call, CALLS);

const measures = {
  async 'runspaces:to-runspace'() {
    const pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    try {
      const tally = await pool.invoke(async (ctx) => new (await import(ctx.using.classes)).Tally(), { using: { classes } });
      return await callLoop((n) => tally.add(n));
    } finally {
      await pool.close();
    }
  },
  async 'comlink:to-runspace'() {
    const worker = new Worker(comlinkWorker);
    try {
      const ready = new Promise((resolve) => worker.once('message', resolve));
      worker.postMessage({ expose: true });
      await ready;
      const tally = Comlink.wrap(nodeEndpoint(worker));
      return await callLoop((n) => tally.add(n));
    } finally {
      await worker.terminate();
    }
  },
  async 'runspaces:from-runspace'() {
    const pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    try {
      return await pool.invoke(async (ctx, calls) => {
        const tally = ctx.using.tally;
        for (let i = 0; i < 2_000; i++) await tally.add(1);
        const t0 = performance.now();
        for (let i = 0; i < calls; i++) await tally.add(1);
        return ((performance.now() - t0) * 1000) / calls;
      }, { using: { tally: new Tally() }, args: [CALLS] });
    } finally {
      await pool.close();
    }
  },
  async 'comlink:from-runspace'() {
    const worker = new Worker(comlinkWorker);
    try {
      const { port1, port2 } = new MessageChannel();
      Comlink.expose(new Tally(), nodeEndpoint(port1));
      const result = new Promise((resolve) => worker.once('message', resolve));
      worker.postMessage({ port: port2, calls: CALLS }, [port2]);
      const perCall = await result;
      port1.close();
      return perCall;
    } finally {
      await worker.terminate();
    }
  },
  /** ns per call: a copied instance's method, then a locally made instance's, in the same runspace. */
  async 'copied:method'() {
    return copiedVsLocal('copied');
  },
  async 'local:method'() {
    return copiedVsLocal('local');
  },
};

async function copiedVsLocal(which) {
  const pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
  try {
    return await pool.invoke(async (ctx, kind) => {
      const { Step: S } = await import(ctx.using.classes);
      const step = kind === 'copied' ? ctx.using.step : new S(1);
      if (!(step instanceof S)) throw new Error('the copy is not a real instance');
      const n = 10_000_000;
      let x = 0;
      for (let i = 0; i < n; i++) x = step.next(x);
      // Several timed loops, the median kept: a sub-nanosecond call swings with JIT timing.
      const times = [];
      for (let round = 0; round < 7; round++) {
        const t0 = performance.now();
        for (let i = 0; i < n; i++) x = step.next(x);
        times.push(((performance.now() - t0) * 1e6) / n);
      }
      times.sort((a, b) => a - b);
      return x > 0 ? times[3] : Number.NaN;
    }, { using: { classes, step: new Step(1) }, args: [which] });
  } finally {
    await pool.close();
  }
}

await serveChild((library, metric) => measures[`${library}:${metric}`]());

export async function runAffinityBenchmark({ repeats = 5, log = console.log } = {}) {
  const pairs = [
    ['to-runspace', 'runspaces'], ['to-runspace', 'comlink'],
    ['from-runspace', 'runspaces'], ['from-runspace', 'comlink'],
    ['method', 'copied'], ['method', 'local'],
  ];
  const samples = {};
  for (let r = 0; r < repeats; r++) {
    for (const [metric, library] of pairs) {
      const value = await measureInChild(import.meta.url, library, metric, { timeout: 120_000, log });
      ((samples[metric] ??= {})[library] ??= []).push(value);
    }
  }
  const medians = {};
  for (const [metric, libraries] of Object.entries(samples)) {
    medians[metric] = Object.fromEntries(Object.entries(libraries).map(([library, values]) => [library, median(values)]));
  }
  return { machine: machine(), repeats, calls: CALLS, samples, medians };
}

export function affinityTable({ medians: m }) {
  const rows = [
    '| what | runspaces | comlink | ratio |',
    '|---|---|---|---|',
    `| proxied call, main thread → object in a runspace | ${fmt(m['to-runspace'].runspaces)} µs | ${fmt(m['to-runspace'].comlink)} µs | ${(m['to-runspace'].runspaces / m['to-runspace'].comlink).toFixed(2)}x comlink's time |`,
    `| proxied call, runspace → object on the main thread | ${fmt(m['from-runspace'].runspaces)} µs | ${fmt(m['from-runspace'].comlink)} µs | ${(m['from-runspace'].runspaces / m['from-runspace'].comlink).toFixed(2)}x comlink's time |`,
    `| method of a copied NoRunspaceAffinity instance vs. a local instance | ${m.method.copied.toFixed(2)} ns | ${m.method.local.toFixed(2)} ns (local) | ${(m.method.copied / m.method.local).toFixed(2)}x a local call |`,
  ];
  return rows.join('\n');
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const { repeats, json } = benchArgs();
  const result = await runAffinityBenchmark({ repeats });
  console.log(`${result.machine}; ${result.calls.toLocaleString('en-US')} awaited calls per run; medians of ${result.repeats} runs, each in a fresh process.\n`);
  console.log(affinityTable(result));
  const m = result.medians;
  console.log('\nTargets of the class affinity issue, in this run:');
  console.log(`- proxied call round trip: ${(m['to-runspace'].runspaces / m['to-runspace'].comlink).toFixed(2)}x / ${(m['from-runspace'].runspaces / m['from-runspace'].comlink).toFixed(2)}x comlink's time (target <= 1x)`);
  console.log(`- NoRunspaceAffinity method: ${(m.method.copied / m.method.local).toFixed(2)}x a local call (target ~1x)`);
  if (json) writeFileSync(json, JSON.stringify(result, null, 2));
}
