/**
 * Leak check per workload: runs each workload a service would repeat for
 * hours, then collects on every thread and reports how the main thread's
 * heap moved, in MiB per minute of work. A flat heap is the target: a slope
 * near zero, whatever the run length.
 *
 *   node --expose-gc bench/leaks.js [--seconds 20] [--json FILE]
 *
 * `npm test` runs it for about a second per workload (test/adversarial/
 * leaks.test.ts); `npm run bench` for the default 20 s.
 */
import { writeFileSync } from 'node:fs';
import { AutoResetEvent, Mutex, RunspacePool, Semaphore, releaseRemote } from 'runspaces';
import { machine } from './stats.js';

const classes = new URL('./workers/affinity-classes.js', import.meta.url).href;
const flag = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : fallback;
};

/** Each workload runs one round after another; a round is a few hundred operations. */
const workloads = {
  'fresh sync primitives per call': async (pool) => {
    await Promise.all(Array.from({ length: 200 }, () => pool.invoke((ctx) => {
      ctx.using.lock.waitOne();
      ctx.using.lock.releaseMutex();
      ctx.using.gate.release();
      ctx.using.event.set();
    }, { using: { lock: new Mutex(), gate: new Semaphore(0, 1), event: new AutoResetEvent(false) } })));
  },
  'generated script blocks': async (pool) => {
    const base = Math.random();
    await Promise.all(Array.from({ length: 200 }, (_, i) => pool.invoke(new Function('ctx', `return ${base} + ${i};`))));
  },
  'parallel loops': async (pool) => {
    for (let i = 0; i < 5; i++) await pool.forEachParallel(Array.from({ length: 2_000 }, (_, k) => k), (n) => n * 2, { using: { round: i } }).toArray();
  },
  'thread jobs': async (pool) => {
    const jobs = Array.from({ length: 50 }, (_, i) => pool.startThreadJob((ctx, n) => {
      ctx.writeVerbose(`job ${n}`);
      return n;
    }, { args: [i] }));
    for (const job of jobs) {
      await job.wait();
      job.receive();
      job.remove();
    }
  },
  'acquire and release': async (pool) => {
    for (let i = 0; i < 100; i++) {
      const runspace = await pool.acquire();
      await runspace.setVariable('round', i);
      runspace.release();
    }
  },
  'affinity proxies': async (pool) => {
    const tallies = await Promise.all(Array.from({ length: 100 }, () => pool.invoke(async (ctx) => new (await import(ctx.using.classes)).Tally(), { using: { classes } })));
    await Promise.all(tallies.map((tally) => tally.add(1)));
    for (const tally of tallies) releaseRemote(tally);
  },
};

async function collect(pool) {
  for (let i = 0; i < 3; i++) {
    await Promise.all(Array.from({ length: pool.getMaxRunspaces() }, () => pool.invoke(async () => {
      globalThis.gc();
      await new Promise((resolve) => setImmediate(resolve));
    })));
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** Runs every workload for `seconds` and returns MiB/min of main-heap growth (and the raw figures) for each. */
export async function runLeakCheck({ seconds = 20, only } = {}) {
  if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');
  const results = {};
  for (const [name, round] of Object.entries(workloads)) {
    if (only !== undefined && !name.includes(only)) continue;
    const pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
    // Warm up: caches fill, code compiles, so what is measured is what stays.
    const warmUntil = performance.now() + Math.min(1_000, seconds * 500);
    while (performance.now() < warmUntil) await round(pool);
    const before = await collect(pool);
    const start = performance.now();
    let rounds = 0;
    while (performance.now() - start < seconds * 1_000) {
      await round(pool);
      rounds++;
    }
    const minutes = (performance.now() - start) / 60_000;
    const after = await collect(pool);
    await pool.close();
    results[name] = { rounds, growthMiB: after - before, mibPerMinute: (after - before) / minutes };
  }
  return { machine: machine(), seconds, results };
}

/** The same check in a child process started with `--expose-gc` (for `npm run bench`, which runs without it). */
export async function runLeakCheckInChild({ seconds = 20 } = {}) {
  const { execFile } = await import('node:child_process');
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'runspaces-leaks-'));
  try {
    const json = join(dir, 'leaks.json');
    await new Promise((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', new URL(import.meta.url).pathname, '--seconds', String(seconds), '--json', json], { timeout: seconds * 20_000 + 60_000 }, (error) => (error ? reject(error) : resolve()));
    });
    return JSON.parse(readFileSync(json, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function leakTable(report) {
  const lines = ['| workload | rounds | main heap growth (MiB) | MiB/min |', '|---|---:|---:|---:|'];
  for (const [name, r] of Object.entries(report.results)) {
    lines.push(`| ${name} | ${r.rounds.toLocaleString('en-US')} | ${r.growthMiB.toFixed(2)} | ${r.mibPerMinute.toFixed(2)} |`);
  }
  return lines.join('\n');
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const report = await runLeakCheck({ seconds: Number(flag('--seconds', 20)), only: flag('--only', undefined) });
  console.log(`\nLeak check on ${report.machine}; ${report.seconds} s per workload, after a warm-up; main-thread heap after collecting on every thread.\n`);
  console.log(leakTable(report));
  const json = flag('--json', undefined);
  if (json !== undefined) writeFileSync(json, JSON.stringify(report, null, 2));
}
