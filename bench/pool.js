/**
 * Pool benchmark: runspaces against piscina, tinypool, workerpool and
 * poolifier, in one run, on the same tiny task with 2 threads.
 *
 *   burst      N tasks fired at once, tasks/s (higher is better)
 *   roundTrip  one awaited task at a time, µs per task (lower is better)
 *   startup    create a 2-thread pool and finish a first task, ms (lower is better)
 *   memory     RSS added per worker, MiB, with 4 workers started (lower is better)
 *   burstBusy, roundTripBusy   the first two while another process keeps one
 *              of the cores busy (an application's machine is rarely idle)
 *
 * runspaces runs the task as a script block, the way this library is mostly
 * used; "runspaces (module)" runs the peers' own worker file as a module
 * function ({ module, export }), the way piscina users write tasks. The
 * module variant is measured on the four throughput and latency rows only.
 *
 * Every measurement runs in a fresh child process; libraries alternate order
 * across repeats; medians of the repeats are reported with ratios to runspaces.
 *
 *   node bench/pool.js [--repeats 5] [--json file]
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { adapters, available } from './peers.js';
import { benchArgs, fmt, machine, measureInChild, median, serveChild } from './stats.js';

const THREADS = 2;
const BURST_TASKS = 50_000;
const ROUND_TRIPS = 10_000;

const MODULE_VARIANT = 'runspaces (module)';
const MODULE_METRICS = new Set(['burst', 'roundTrip', 'burstBusy', 'roundTripBusy']);
const poolAdapters = {
  runspaces: adapters.runspaces,
  async [MODULE_VARIANT](threads) {
    const { RunspacePool } = await import('runspaces');
    const pool = new RunspacePool({ minRunspaces: threads, maxRunspaces: threads });
    const opened = pool.open();
    const task = { module: new URL('./workers/increment.js', import.meta.url), export: 'default', context: false };
    return { run: (x) => pool.invoke(task, { args: [x] }), close: async () => { await opened; await pool.close(); } };
  },
  ...adapters,
};

// A child prints its figure and exits; it does not wait on the pool's own
// shutdown, which for some peers can stall and is not what is measured.
async function measure(library, metric) {
  const adapter = poolAdapters[library];
  if (metric === 'startup') {
    const start = performance.now();
    const pool = await adapter(THREADS);
    await pool.run(1);
    return performance.now() - start;
  }
  if (metric === 'memory') {
    global.gc?.();
    const before = process.memoryUsage().rss;
    const pool = await adapter(4);
    await Promise.all(Array.from({ length: 200 }, (_, i) => pool.run(i)));
    await new Promise((resolve) => setTimeout(resolve, 200));
    global.gc?.();
    return (process.memoryUsage().rss - before) / 4 / 2 ** 20;
  }
  const pool = await adapter(THREADS);
  await Promise.all(Array.from({ length: 2_000 }, (_, i) => pool.run(i))); // warm up
  let value;
  if (metric === 'burst' || metric === 'burstBusy') {
    const start = performance.now();
    const results = await Promise.all(Array.from({ length: BURST_TASKS }, (_, i) => pool.run(i)));
    value = BURST_TASKS / ((performance.now() - start) / 1000);
    if (results[BURST_TASKS - 1] !== BURST_TASKS) throw new Error(`${library}: wrong result`);
  } else {
    for (let i = 0; i < 2_000; i++) await pool.run(i);
    const start = performance.now();
    for (let i = 0; i < ROUND_TRIPS; i++) await pool.run(i);
    value = ((performance.now() - start) / ROUND_TRIPS) * 1000;
  }
  return value;
}

export { MODULE_VARIANT };

export const METRICS = {
  burst: { unit: 'tasks/s', better: 'higher' },
  roundTrip: { unit: 'µs/task', better: 'lower' },
  // The same two with one core kept busy by another process: an application is rarely idle.
  burstBusy: { unit: 'tasks/s, one core busy', better: 'higher', busy: true },
  roundTripBusy: { unit: 'µs/task, one core busy', better: 'lower', busy: true },
  startup: { unit: 'ms', better: 'lower' },
  memory: { unit: 'MiB/worker', better: 'lower' },
};

export async function runPoolBenchmark({ repeats = 5, log = console.log } = {}) {
  const libraries = [];
  for (const name of Object.keys(poolAdapters)) {
    if (name === MODULE_VARIANT || (await available(name))) libraries.push(name);
    else log(`note: ${name} is not installed; skipped`);
  }
  const samples = {};
  for (let r = 0; r < repeats; r++) {
    const order = r % 2 === 0 ? libraries : [...libraries].reverse();
    for (const metric of Object.keys(METRICS)) {
      for (const library of order) {
        if (library === MODULE_VARIANT && !MODULE_METRICS.has(metric)) continue;
        // Another process spinning on one of the cores for the whole measurement.
        const hog = METRICS[metric].busy ? spawn(process.execPath, ['-e', 'for (;;);'], { stdio: 'ignore' }) : undefined;
        try {
          const value = await measureInChild(import.meta.url, library, metric, { execArgv: ['--expose-gc'], timeout: 120_000, log });
          ((samples[metric] ??= {})[library] ??= []).push(value);
        } finally {
          hog?.kill('SIGKILL');
        }
      }
    }
    log(`  pool benchmark: repeat ${r + 1}/${repeats} done`);
  }
  const results = {};
  for (const [metric, { unit, better }] of Object.entries(METRICS)) {
    const ours = median(samples[metric].runspaces);
    results[metric] = { unit, better, libraries: {} };
    for (const library of libraries) {
      if (samples[metric][library] === undefined) continue;
      const value = median(samples[metric][library]);
      // Ratio > 1 always means runspaces is better by that factor.
      const advantage = better === 'higher' ? ours / value : value / ours;
      results[metric].libraries[library] = { median: value, runs: samples[metric][library], advantage };
    }
  }
  return { machine: machine(), threads: THREADS, burstTasks: BURST_TASKS, roundTrips: ROUND_TRIPS, repeats, results };
}

/**
 * Medians, and in parentheses how many times better runspaces is than that
 * library (above 1 = runspaces ahead). The module variant's cell compares it
 * with piscina instead: "runspaces (module)" against a peer running the same
 * module.
 */
export function poolTable(report) {
  const libraries = Object.keys(report.results.burst.libraries);
  const lines = [
    `| metric | ${libraries.join(' | ')} |`,
    `|---|${libraries.map(() => '---:').join('|')}|`,
  ];
  for (const [metric, { unit, better, libraries: values }] of Object.entries(report.results)) {
    const cells = libraries.map((l) => {
      if (values[l] === undefined) return '';
      const { median: m, advantage } = values[l];
      if (l === 'runspaces') return `**${fmt(m)}**`;
      if (l === MODULE_VARIANT) return `**${fmt(m)}** (${moduleAdvantage(report.results[metric]).toFixed(2)}× piscina)`;
      return `${fmt(m)} (${advantage.toFixed(2)}×)`;
    });
    lines.push(`| ${metric} (${unit}, ${better} is better) | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** How many times better the module variant is than piscina on one metric (above 1 = ahead). */
export function moduleAdvantage(metricResult) {
  const ours = metricResult.libraries[MODULE_VARIANT]?.median;
  const piscina = metricResult.libraries.piscina?.median;
  if (ours === undefined || piscina === undefined) return Number.NaN;
  return metricResult.better === 'higher' ? ours / piscina : piscina / ours;
}

if (!(await serveChild(measure)) && import.meta.url === `file://${process.argv[1]}`) {
  const { repeats, json } = benchArgs();
  const report = await runPoolBenchmark({ repeats });
  console.log(`\nPool benchmark on ${report.machine}; ${report.threads} threads; medians of ${report.repeats} runs.`);
  console.log('In parentheses: how many times better runspaces is (above 1 = runspaces ahead).\n');
  console.log(poolTable(report));
  if (json !== undefined) writeFileSync(json, JSON.stringify(report, null, 2));
}
