/**
 * Machine-wide lock benchmark: a `Global\` Mutex against proper-lockfile
 * (what Node code uses today to guard a file across processes), in one run,
 * each measurement in fresh processes.
 *
 *   uncontended   acquire+release in one process, nothing else holding it, µs per pair
 *                 (also: waitOne in a runspace, and the bare OS lock call as the floor)
 *   contended     2 processes acquiring and releasing as fast as they can for
 *                 a fixed time: pairs/s in total, and the fairness between the
 *                 two (Jain's index: 1 = equal shares, 0.5 = one process took all)
 *
 *   node bench/machine-lock.js [--repeats 5] [--json FILE]
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mutex, RunspacePool } from 'runspaces';
import { benchArgs, fmt, machine, measureInChild, median, serveChild } from './stats.js';

const require = createRequire(import.meta.url);
const CONTENDED_MS = 1000;

const uncontended = {
  async runspaces(dir) {
    const { mutex } = Mutex.open('Global\\bench-uncontended', { lockDirectory: dir });
    const n = 20_000;
    for (let i = 0; i < 2_000; i++) { await mutex.acquire(); mutex.releaseMutex(); }
    const t0 = performance.now();
    for (let i = 0; i < n; i++) { await mutex.acquire(); mutex.releaseMutex(); }
    return ((performance.now() - t0) * 1000) / n;
  },
  async 'runspaces-waitOne'(dir) {
    const pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    try {
      const { mutex } = Mutex.open('Global\\bench-uncontended', { lockDirectory: dir });
      return await pool.invoke((ctx, n) => {
        const m = ctx.using.mutex;
        for (let i = 0; i < 2_000; i++) { m.waitOne(); m.releaseMutex(); }
        const t0 = performance.now();
        for (let i = 0; i < n; i++) { m.waitOne(); m.releaseMutex(); }
        return ((performance.now() - t0) * 1000) / n;
      }, { args: [20_000], using: { mutex } });
    } finally {
      await pool.close();
    }
  },
  async 'os-lock'(dir) {
    const native = require('fs-native-extensions');
    const fd = openSync(join(dir, 'floor.lock'), 'w');
    const n = 100_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) { native.tryLock(fd, 0, 1); native.unlock(fd, 0, 1); }
    closeSync(fd);
    return ((performance.now() - t0) * 1000) / n;
  },
  async 'proper-lockfile'(dir) {
    const lockfile = require('proper-lockfile');
    const file = join(dir, 'guarded.txt');
    writeFileSync(file, '');
    const n = 1_000;
    for (let i = 0; i < 100; i++) await (await lockfile.lock(file))();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await (await lockfile.lock(file))();
    return ((performance.now() - t0) * 1000) / n;
  },
};

/** Pairs this process completed between the agreed start and end times. */
const contended = {
  async runspaces(dir, startAt) {
    const { mutex } = Mutex.open('Global\\bench-contended', { lockDirectory: dir });
    return countUntil(startAt, async () => { await mutex.acquire(); mutex.releaseMutex(); });
  },
  async 'runspaces-waitOne'(dir, startAt) {
    const pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
    try {
      const { mutex } = Mutex.open('Global\\bench-contended-blocking', { lockDirectory: dir });
      return await pool.invoke((ctx, from, ms) => {
        const m = ctx.using.mutex;
        while (Date.now() < from);
        let count = 0;
        while (Date.now() < from + ms) { m.waitOne(); m.releaseMutex(); count++; }
        return count;
      }, { args: [startAt, CONTENDED_MS], using: { mutex } });
    } finally {
      await pool.close();
    }
  },
  async 'proper-lockfile'(dir, startAt) {
    const lockfile = require('proper-lockfile');
    const file = join(dir, 'contended.txt');
    writeFileSync(file, '', { flag: 'a' });
    // Its default is to fail at once when the lock is taken; a waiter must retry.
    const options = { retries: { retries: 100_000, minTimeout: 1, maxTimeout: 4, factor: 1.5 } };
    return countUntil(startAt, async () => (await lockfile.lock(file, options))());
  },
};

async function countUntil(startAt, pair) {
  while (Date.now() < startAt) await new Promise((resolve) => setTimeout(resolve, 1));
  const end = startAt + CONTENDED_MS;
  let count = 0;
  while (Date.now() < end) { await pair(); count++; }
  return count;
}

await serveChild((library, metric) => {
  const dir = process.env.BENCH_LOCK_DIR;
  return metric === 'uncontended' ? uncontended[library](dir) : contended[library](dir, Number(process.env.BENCH_START_AT));
});

const child = (library, metric, env, log) => measureInChild(import.meta.url, library, metric, { env, timeout: 60_000, log });

export async function runMachineLockBenchmark({ repeats = 5, log = console.log } = {}) {
  const samples = { uncontended: {}, contended: {}, fairness: {} };
  const add = (metric, subject, value) => (samples[metric][subject] ??= []).push(value);
  for (let r = 0; r < repeats; r++) {
    const dir = mkdtempSync(join(tmpdir(), 'runspaces-bench-locks-'));
    try {
      for (const library of Object.keys(uncontended)) add('uncontended', library, await child(library, 'uncontended', { BENCH_LOCK_DIR: dir }, log));
      for (const library of Object.keys(contended)) {
        const env = { BENCH_LOCK_DIR: dir, BENCH_START_AT: String(Date.now() + 500) };
        const counts = await Promise.all([child(library, 'contended', env, log), child(library, 'contended', env, log)]);
        const total = counts[0] + counts[1];
        add('contended', library, total / (CONTENDED_MS / 1000));
        add('fairness', library, total === 0 ? 0 : (total * total) / (2 * (counts[0] ** 2 + counts[1] ** 2)));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    log(`  machine-lock benchmark: repeat ${r + 1}/${repeats} done`);
  }
  const medians = Object.fromEntries(Object.entries(samples).map(([metric, bySubject]) =>
    [metric, Object.fromEntries(Object.entries(bySubject).map(([s, v]) => [s, median(v)]))]));
  return { machine: machine(), repeats, contendedMs: CONTENDED_MS, medians, samples };
}

export function machineLockTable({ medians: m }) {
  const u = m.uncontended;
  return [
    '| metric | runspaces `Global\\` Mutex | proper-lockfile | OS lock call alone |',
    '|---|---:|---:|---:|',
    `| uncontended acquire+release, async (µs, lower is better) | ${fmt(u.runspaces, 2)} (${(u['proper-lockfile'] / u.runspaces).toFixed(0)}× faster) | ${fmt(u['proper-lockfile'], 1)} | ${fmt(u['os-lock'], 2)} |`,
    `| uncontended waitOne+release in a runspace (µs) | ${fmt(u['runspaces-waitOne'], 2)} | | |`,
    `| 2 processes contending (pairs/s, higher is better) | ${fmt(m.contended.runspaces)} (${(m.contended.runspaces / m.contended['proper-lockfile']).toFixed(1)}×) | ${fmt(m.contended['proper-lockfile'])} | |`,
    `| fairness between the 2 processes (Jain's index, 1 = equal) | ${m.fairness.runspaces.toFixed(2)} | ${m.fairness['proper-lockfile'].toFixed(2)} | |`,
    `| 2 processes contending, waitOne in a runspace (pairs/s) | ${fmt(m.contended['runspaces-waitOne'])}, fairness ${m.fairness['runspaces-waitOne'].toFixed(2)} | | |`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}` && process.argv[2] !== '--child') {
  const { repeats, json } = benchArgs();
  const report = await runMachineLockBenchmark({ repeats });
  console.log(`\nMachine-wide lock benchmark on ${report.machine}; medians of ${report.repeats} runs, each in fresh processes.\n`);
  console.log(machineLockTable(report));
  if (json) writeFileSync(json, JSON.stringify(report, null, 2));
}
