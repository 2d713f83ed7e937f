/**
 * `npm run bench`: every benchmark of the project, one concern per script,
 * each comparing against its peers in the same run, then the contention sweep
 * of `runspaces bench contention` (its chart goes to docs/contention.svg), and
 * last a list of every target the issues set with where this run stands.
 * Prints markdown ready for docs/benchmarks.md and writes the raw numbers to
 * .bench-results/.
 *
 *   npm run bench -- [--repeats 5]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { moduleAdvantage, poolTable, runPoolBenchmark } from './pool.js';
import { parallelTable, runParallelBenchmark } from './parallel.js';
import { machineLockTable, runMachineLockBenchmark } from './machine-lock.js';
import { affinityTable, runAffinityBenchmark } from './affinity.js';
import { benchArgs } from './stats.js';
import { runContention } from '../dist/cli/contention.js';
import { markdownTable } from '../dist/cli/contention-report.js';
import { contentionSvg } from '../dist/cli/svg-chart.js';
import { runSyncBenchmark, syncTable } from './sync.js';
import { leakTable, runLeakCheckInChild } from './leaks.js';
import { clusterTable, runClusterBenchmark } from './cluster.js';

const { repeats } = benchArgs();

const pool = await runPoolBenchmark({ repeats });
const { burst, roundTrip, startup, memory } = pool.results;
const ratio = (metric) => metric.libraries.piscina?.advantage;

console.log(`\n## Pool (bench/pool.js)\n`);
console.log(`${pool.machine}; ${pool.threads} threads; ${pool.burstTasks.toLocaleString('en-US')}-task bursts; medians of ${pool.repeats} runs, each in a fresh process.`);
console.log('In parentheses: how many times better runspaces is than that peer (above 1 = runspaces ahead).\n');
console.log(poolTable(pool));
console.log('\nTargets of the pool issue, against piscina in this run:');
const check = (label, value, target, fmt) => console.log(`- ${label}: ${fmt(value)} (target ${target}) ${value === undefined ? '?' : ''}`);
/** Every target of every issue, checked at the end: [issue, target, measured text, met]. */
const standing = [];
const target = (issue, what, measured, met) => standing.push([issue, what, measured, met]);
check('burst throughput', ratio(burst), '>= 5x piscina', (v) => `${v?.toFixed(2)}x piscina`);
check('awaited round trip', roundTrip.libraries.runspaces.median / roundTrip.libraries.piscina?.median, '<= 0.5x piscina', (v) => `${v?.toFixed(2)}x piscina's time`);
check('startup of a 2-runspace pool', startup.libraries.runspaces.median / startup.libraries.piscina?.median, '<= 1x piscina', (v) => `${v?.toFixed(2)}x piscina's time`);
check('memory per runspace', memory.libraries.runspaces.median / memory.libraries.piscina?.median, '<= 1x piscina', (v) => `${v?.toFixed(2)}x piscina's`);

const sync = await runSyncBenchmark({ repeats });
const m = sync.medians;
console.log(`\n## Locks (bench/sync.js)\n`);
console.log(`${sync.machine}; medians of ${sync.repeats} runs; worker-side loops run in runspaces.\n`);
console.log(syncTable(sync));
console.log('\nTargets of the synchronization issue, in this run:');
console.log(`- uncontended lock+unlock with owner and recursion: ${(m.uncontended.mutex / m.uncontended.bare).toFixed(2)}x the bare mutex (target <= 1.5x)`);
console.log(`- contended throughput: ${(m.contended.mutex / m.contended.bare).toFixed(2)}x the bare mutex (target >= 0.8x)`);
console.log(`- async acquire on the free path: ${(m.asyncFree.runspaces / m.asyncFree['async-mutex']).toFixed(1)}x async-mutex (target >= 10x)`);
console.log(`- handoff: ${m.handoff.mutex.toFixed(2)} us (target < 2 us)`);
console.log(`- fair mode's cost: contended throughput ${(m.contended.fair / m.contended.mutex).toFixed(2)}x the default (barging) mode`);
console.log(`- abandoned-lock recovery: ${m.abandoned.mutex.toFixed(1)} ms (target < 20 ms)`);

const loops = await runParallelBenchmark({ repeats });
const p = loops.medians;
console.log(`\n## Parallel loops (bench/parallel.js)\n`);
console.log(`${loops.machine}; ${loops.threads} runspaces; medians of ${loops.repeats} runs, each in a fresh process.`);
console.log(`The loop runs ${loops.loopItems.toLocaleString('en-US')} items; each peer runs ${loops.peerItems.toLocaleString('en-US')} tasks, one per item. In parentheses: the loop's items/s over the peer's.\n`);
console.log(parallelTable(loops));
console.log('\nTargets of the parallel loop issue, in this run:');
console.log(`- trivial items: ${(p.trivial.runspaces / 1e6).toFixed(2)}M items/s (target >= 1M), ${(p.trivial.runspaces / p.trivial.piscina).toFixed(0)}x piscina one task per item (target >= 20x)`);
console.log(`- ~1 ms CPU-bound items: ${p.cpuBound.runspaces.toFixed(2)}x a plain loop (target >= 1.8x on 2 cores)`);
console.log(`- peak RSS: ${p.memory1M.runspaces.toFixed(0)} MiB over 1M items, ${p.memory10M.runspaces.toFixed(0)} MiB over 10M (bounded: must not grow with input length)`);

const machineLock = await runMachineLockBenchmark({ repeats });
const g = machineLock.medians;
console.log(`\n## Machine-wide locks (bench/machine-lock.js)\n`);
console.log(`${machineLock.machine}; medians of ${machineLock.repeats} runs, each in fresh processes; contention runs ${machineLock.contendedMs} ms.\n`);
console.log(machineLockTable(machineLock));
console.log('\nTargets of the machine-wide mutex issue, in this run:');
console.log(`- uncontended acquire+release: ${g.uncontended.runspaces.toFixed(1)} us, ${(g.uncontended['proper-lockfile'] / g.uncontended.runspaces).toFixed(0)}x faster than proper-lockfile (target >= 10x)`);
console.log(`- 2 processes contending: ${Math.round(g.contended.runspaces).toLocaleString('en-US')} pairs/s, Jain's fairness ${g.fairness.runspaces.toFixed(2)}`);

const affinity = await runAffinityBenchmark({ repeats });
const a = affinity.medians;
console.log(`\n## Class affinity (bench/affinity.js)\n`);
console.log(`${affinity.machine}; ${affinity.calls.toLocaleString('en-US')} awaited calls per run; medians of ${affinity.repeats} runs, each in a fresh process.\n`);
console.log(affinityTable(affinity));
console.log('\nTargets of the class affinity issue, in this run:');
console.log(`- proxied call round trip: ${(a['to-runspace'].runspaces / a['to-runspace'].comlink).toFixed(2)}x comlink's time to a runspace, ${(a['from-runspace'].runspaces / a['from-runspace'].comlink).toFixed(2)}x from one (target <= 1x)`);
console.log(`- NoRunspaceAffinity method: ${(a.method.copied / a.method.local).toFixed(2)}x a local call (target: a local call)`);

const contention = await runContention({
  threads: [1, 2, 4, 8],
  locks: ['mutex', 'semaphore', 'rwlock', 'async-mutex'],
  criticalNs: [0, 1000, 10000],
  durationMs: 1000,
  repeats,
});
console.log(`\n## Contention (runspaces bench contention)\n`);
console.log(markdownTable(contention));
writeFileSync('docs/contention.svg', `${contentionSvg(contention)}\n`);
const at = (lock, threads, criticalNs) => contention.points.find((p) => p.lock === lock && p.threads === threads && p.criticalNs === criticalNs)?.median;
const mutex2 = at('mutex', 2, 0);
const asyncMutex2 = at('async-mutex', 2, 0);

const leaks = await runLeakCheckInChild({ seconds: 20 });
console.log(`\n## Leak check (bench/leaks.js)\n`);
console.log(`${leaks.machine}; ${leaks.seconds} s per workload after a warm-up; main-thread heap after collecting on every thread. A plain \`new Function\` loop without the library grows V8's heap by about 40 bytes per function, which the generated-script-block row includes.\n`);
console.log(leakTable(leaks));

const clusterRun = await runClusterBenchmark({ repeats: Math.min(repeats, 3) });
console.log(`\n## Cluster (bench/cluster.js)\n`);
if (!clusterRun.skipped) console.log(`${clusterRun.machine}; Redis and the nodes on this machine (loopback); medians of ${clusterRun.repeats} runs.\n`);
console.log(clusterTable(clusterRun));

const piscinaTime = (metric) => metric.libraries.runspaces.median / metric.libraries.piscina?.median;
// Issue 16's targets, for the script-block task and for the module-function variant (what piscina users write).
const { burstBusy, roundTripBusy } = pool.results;
const both = (metric, show) => `${show(ratio(metric))} script block, ${show(moduleAdvantage(metric))} module`;
const timeX = (advantage) => `${(1 / advantage).toFixed(2)}x`;
const rateX = (advantage) => `${advantage.toFixed(2)}x`;
const all = (metric, met) => met(ratio(metric)) && met(moduleAdvantage(metric));
target('pool', "awaited round trip <= 0.5x piscina's time", both(roundTrip, timeX), all(roundTrip, (a) => 1 / a <= 0.5));
target('pool', "awaited round trip, one core busy, <= 1x piscina's time", both(roundTripBusy, timeX), all(roundTripBusy, (a) => 1 / a <= 1));
target('pool', 'burst >= 5x piscina', both(burst, rateX), all(burst, (a) => a >= 5));
target('pool', 'burst, one core busy, >= 4x piscina', both(burstBusy, rateX), all(burstBusy, (a) => a >= 4));
target('pool', "startup of a 2-runspace pool <= 1x piscina's", `${piscinaTime(startup).toFixed(2)}x`, piscinaTime(startup) <= 1);
target('pool', "memory per runspace <= 1x piscina's", `${piscinaTime(memory).toFixed(2)}x`, piscinaTime(memory) <= 1);
target('sync', 'uncontended lock+unlock <= 1.5x the bare mutex', `${(m.uncontended.mutex / m.uncontended.bare).toFixed(2)}x`, m.uncontended.mutex / m.uncontended.bare <= 1.5);
target('sync', 'contended throughput >= 0.8x the bare mutex', `${(m.contended.mutex / m.contended.bare).toFixed(2)}x`, m.contended.mutex / m.contended.bare >= 0.8);
target('sync', 'async acquire, free lock >= 10x async-mutex', `${(m.asyncFree.runspaces / m.asyncFree['async-mutex']).toFixed(1)}x`, m.asyncFree.runspaces / m.asyncFree['async-mutex'] >= 10);
target('sync', 'handoff < 2 us', `${m.handoff.mutex.toFixed(2)} us`, m.handoff.mutex < 2);
target('sync', 'abandoned-lock recovery < 20 ms', `${m.abandoned.mutex.toFixed(1)} ms`, m.abandoned.mutex < 20);
target('parallel', '>= 1M trivial items/s', `${(p.trivial.runspaces / 1e6).toFixed(2)}M/s`, p.trivial.runspaces >= 1e6);
target('parallel', '>= 20x piscina one task per item', `${(p.trivial.runspaces / p.trivial.piscina).toFixed(0)}x`, p.trivial.runspaces / p.trivial.piscina >= 20);
target('parallel', '>= 1.8x a plain loop, ~1 ms items, 2 cores', `${p.cpuBound.runspaces.toFixed(2)}x`, p.cpuBound.runspaces >= 1.8);
target('parallel', 'slow items: makespan <= 1.1x ideal on a fresh pool', `${p.slowItems.runspaces.toFixed(2)}x`, p.slowItems.runspaces <= 1.1);
target('parallel', 'heavy-tailed items: makespan <= 1.15x ideal', `${p.heavyTailed.runspaces.toFixed(2)}x`, p.heavyTailed.runspaces <= 1.15);
target('machine lock', 'uncontended >= 10x faster than proper-lockfile', `${(g.uncontended['proper-lockfile'] / g.uncontended.runspaces).toFixed(0)}x`, g.uncontended['proper-lockfile'] / g.uncontended.runspaces >= 10);
const toRunspace = a['to-runspace'].runspaces / a['to-runspace'].comlink;
const fromRunspace = a['from-runspace'].runspaces / a['from-runspace'].comlink;
target('affinity', "proxied call round trip <= 1x comlink's time", `${toRunspace.toFixed(2)}x to a runspace, ${fromRunspace.toFixed(2)}x from one`, toRunspace <= 1 && fromRunspace <= 1);
target('affinity', 'NoRunspaceAffinity method costs a local call', `${(a.method.copied / a.method.local).toFixed(2)}x`, a.method.copied / a.method.local <= 1.25);
for (const [name, r] of Object.entries(leaks.results)) {
  if (name === 'generated script blocks') continue;
  target('robustness', `flat heap: ${name} (< 2 MiB/min)`, `${r.mibPerMinute.toFixed(2)} MiB/min`, Math.abs(r.mibPerMinute) < 2);
}
if (!clusterRun.skipped) {
  const scale2 = clusterRun.scaling[2] / clusterRun.scaling[1];
  target('cluster', '2 node processes: >= 1.6x the items/s of 1 (2 cores)', `${scale2.toFixed(2)}x`, scale2 >= 1.6);
}
if (mutex2 && asyncMutex2) {
  target('contention', 'Mutex, 2 threads vs async-mutex, 2 async flows (empty critical section)', `${(mutex2.throughput / asyncMutex2.throughput).toFixed(1)}x the acquisitions/s`, mutex2.throughput > asyncMutex2.throughput);
}

console.log(`\n## Where we stand\n`);
console.log('| issue | target | this run | met |');
console.log('|---|---|---|---|');
for (const [issue, what, measured, met] of standing) console.log(`| ${issue} | ${what} | ${measured} | ${met ? 'yes' : '**no**'} |`);

mkdirSync('.bench-results', { recursive: true });
writeFileSync('.bench-results/contention.json', JSON.stringify(contention, null, 2));
writeFileSync('.bench-results/affinity.json', JSON.stringify(affinity, null, 2));
writeFileSync('.bench-results/machine-lock.json', JSON.stringify(machineLock, null, 2));
writeFileSync('.bench-results/parallel.json', JSON.stringify(loops, null, 2));
writeFileSync('.bench-results/pool.json', JSON.stringify(pool, null, 2));
writeFileSync('.bench-results/sync.json', JSON.stringify(sync, null, 2));
writeFileSync('.bench-results/leaks.json', JSON.stringify(leaks, null, 2));
writeFileSync('.bench-results/cluster.json', JSON.stringify(clusterRun, null, 2));
