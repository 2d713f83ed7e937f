/**
 * Cluster benchmark: what going through Redis costs against the local pool,
 * how items/s grows with worker node processes, and the cluster lock against
 * the machine-wide one. Starts its own redis-server (loopback, no
 * persistence) and node processes (`runspaces worker`); skipped with a note
 * when redis-server is not installed.
 *
 *   roundTrip  one awaited call: local pool vs one node through Redis, µs
 *   perChunk   a loop of 1,000 trivial items in chunks of 1 item: µs per chunk (a job each)
 *   perItem    a loop of 50,000 trivial items in chunks of 500: µs per item, local vs cluster
 *   scaling    240 items of about 2 ms of arithmetic, chunks of 4, nodes of 1 runspace each:
 *              items/s with 1, 2 and 4 node processes (this machine has 2 cores)
 *   lock       acquire + release, uncontended: ClusterMutex vs a Global\ Mutex, µs
 *   lockPeer   ClusterMutex vs redis-semaphore's Mutex (the most used Redis mutex with
 *              leases), both with their default waits: uncontended, and 4 holders
 *              (each its own connection) contending, µs per acquisition
 *
 *   node bench/cluster.js [--repeats 3] [--json FILE]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterMutex, ClusterPool, Mutex, RunspacePool } from 'runspaces';
import { awaitedCallMicros, benchArgs, calibrateIterations, fmt, machine, median } from './stats.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../', import.meta.url));

async function startRedis() {
  for (let attempt = 0; attempt < 10; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const dir = mkdtempSync(join(tmpdir(), 'runspaces-bench-redis-'));
    const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'ignore'] });
    const ready = await new Promise((resolve) => {
      let out = '';
      server.stdout.on('data', (chunk) => {
        out += chunk;
        if (out.includes('Ready to accept connections')) resolve(true);
      });
      server.once('exit', () => resolve(false));
    });
    if (ready) return { url: `redis://127.0.0.1:${port}`, stop: () => { server.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); } };
    rmSync(dir, { recursive: true, force: true });
  }
  throw new Error('could not start redis-server');
}

async function startNodes(url, queue, count, maxRunspaces) {
  return Promise.all(Array.from({ length: count }, () => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'worker', '--redis', url, '--queue', queue, '--max-runspaces', String(maxRunspaces), '--module-root', ROOT], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (chunk) => {
      err += chunk;
      if (err.includes('taking work')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`node exited ${code}: ${err}`)));
  })));
}

async function stopNodes(nodes) {
  await Promise.all(nodes.map((node) => new Promise((resolve) => {
    node.removeAllListeners('exit');
    node.once('exit', resolve);
    node.kill('SIGKILL');
  })));
}

/** µs per awaited `call()`, after up to 200 warm-up calls (a cluster call costs a millisecond). */
const awaitedMicros = (call, calls) => awaitedCallMicros(() => call(), calls, Math.min(200, calls));

const cpuItem = (n, ctx) => {
  let x = 0;
  for (let i = 0; i < ctx.using.iters; i++) x += Math.sqrt(i + n);
  return x;
};

/** ClusterMutex against redis-semaphore's Mutex, in alternating order between repeats. */
async function lockComparison(url, tag, peerFirst) {
  const { Mutex: PeerMutex } = await import('redis-semaphore');
  const { Redis } = await import('ioredis');
  const clients = Array.from({ length: 4 }, () => new Redis(url));
  const ours = await Promise.all(clients.map(() => ClusterMutex.open(`bench-ours-${tag}`, { redis: url })));
  const peers = clients.map((client) => new PeerMutex(client, `bench-peer-${tag}`, { acquireTimeout: 60_000 }));
  const cycles = {
    ours: async (i) => { await ours[i].acquire(); await ours[i].releaseMutex(); },
    peer: async (i) => { await peers[i].acquire(); await peers[i].release(); },
  };
  const contended = async (cycle) => {
    const each = 100;
    const t0 = performance.now();
    await Promise.all([0, 1, 2, 3].map(async (i) => { for (let k = 0; k < each; k++) await cycle(i); }));
    return ((performance.now() - t0) * 1000) / (4 * each);
  };
  const result = { uncontended: {}, contended: {} };
  try {
    for (const name of peerFirst ? ['peer', 'ours'] : ['ours', 'peer']) {
      result.uncontended[name] = await awaitedMicros(() => cycles[name](0), 500);
      result.contended[name] = await contended(cycles[name]);
    }
  } finally {
    for (const mutex of ours) await mutex.dispose();
    for (const client of clients) client.disconnect();
  }
  return result;
}

async function once(url, queueNumber) {
  const queue = `bench-${process.pid}-${queueNumber}`;
  const result = {};
  const local = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
  const nodes = await startNodes(url, queue, 1, 2);
  const cluster = await ClusterPool.open({ redis: url, queue, moduleRoot: ROOT });
  try {
    result.roundTrip = {
      local: await awaitedMicros(() => local.invoke(() => 1), 2_000),
      cluster: await awaitedMicros(() => cluster.invoke(() => 1), 300),
    };
    const perChunkItems = Array.from({ length: 1_000 }, (_, i) => i);
    let t0 = performance.now();
    await cluster.forEachParallel(perChunkItems, (n) => n, { chunkSize: 1, highWaterMark: 32 });
    result.perChunk = { cluster: ((performance.now() - t0) * 1000) / perChunkItems.length };
    const items = Array.from({ length: 50_000 }, (_, i) => i);
    t0 = performance.now();
    await local.forEachParallel(items, (n) => n + 1);
    const localPerItem = ((performance.now() - t0) * 1000) / items.length;
    t0 = performance.now();
    await cluster.forEachParallel(items, (n) => n + 1, { chunkSize: 500, highWaterMark: 4_000 });
    result.perItem = { local: localPerItem, cluster: ((performance.now() - t0) * 1000) / items.length };
  } finally {
    await cluster.close();
    await stopNodes(nodes);
    await local.close();
  }

  const iters = calibrateIterations(2);
  const cpuItems = Array.from({ length: 240 }, (_, i) => i);
  result.scaling = {};
  for (const count of [1, 2, 4]) {
    const scalingQueue = `${queue}-scale-${count}`;
    const scalingNodes = await startNodes(url, scalingQueue, count, 1);
    const scaling = await ClusterPool.open({ redis: url, queue: scalingQueue, moduleRoot: ROOT });
    try {
      await scaling.forEachParallel(cpuItems.slice(0, 16), cpuItem, { using: { iters }, chunkSize: 4, highWaterMark: 128 });
      const t = performance.now();
      await scaling.forEachParallel(cpuItems, cpuItem, { using: { iters }, chunkSize: 4, highWaterMark: 128 });
      result.scaling[count] = cpuItems.length / ((performance.now() - t) / 1000);
    } finally {
      await scaling.close();
      await stopNodes(scalingNodes);
    }
  }

  const lockDir = mkdtempSync(join(tmpdir(), 'runspaces-bench-lock-'));
  const clusterMutex = await ClusterMutex.open(`bench-${queue}`, { redis: url });
  const { mutex: globalMutex } = Mutex.open('Global\\bench-cluster-compare', { lockDirectory: lockDir });
  try {
    result.lock = {
      cluster: await awaitedMicros(async () => { await clusterMutex.acquire(); await clusterMutex.releaseMutex(); }, 500),
      global: await awaitedMicros(async () => { await globalMutex.acquire(); globalMutex.releaseMutex(); }, 5_000),
    };
  } finally {
    await clusterMutex.dispose();
    globalMutex.dispose();
    rmSync(lockDir, { recursive: true, force: true });
  }
  result.lockPeer = await lockComparison(url, queue, queueNumber % 2 === 1);
  return result;
}

export async function runClusterBenchmark({ repeats = 3 } = {}) {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) {
    return { skipped: 'redis-server is not installed (apt-get install -y redis-server)' };
  }
  const redis = await startRedis();
  const runs = [];
  try {
    for (let r = 0; r < repeats; r++) runs.push(await once(redis.url, r));
  } finally {
    redis.stop();
  }
  const pick = (path) => median(runs.map((run) => path.split('.').reduce((value, key) => value?.[key], run)));
  return {
    machine: machine(),
    repeats,
    roundTrip: { local: pick('roundTrip.local'), cluster: pick('roundTrip.cluster') },
    perChunk: { cluster: pick('perChunk.cluster') },
    perItem: { local: pick('perItem.local'), cluster: pick('perItem.cluster') },
    scaling: { 1: pick('scaling.1'), 2: pick('scaling.2'), 4: pick('scaling.4') },
    lock: { cluster: pick('lock.cluster'), global: pick('lock.global') },
    lockPeer: {
      uncontended: { ours: pick('lockPeer.uncontended.ours'), peer: pick('lockPeer.uncontended.peer') },
      contended: { ours: pick('lockPeer.contended.ours'), peer: pick('lockPeer.contended.peer') },
    },
  };
}

export function clusterTable(r) {
  if (r.skipped) return `skipped: ${r.skipped}`;
  return [
    '| measure | local | cluster (Redis on loopback) | ratio |',
    '|---|---|---|---|',
    `| one awaited call, µs | ${fmt(r.roundTrip.local)} | ${fmt(r.roundTrip.cluster)} | ${fmt(r.roundTrip.cluster / r.roundTrip.local)}× |`,
    `| trivial item in chunks of 500, µs per item | ${fmt(r.perItem.local, 2)} | ${fmt(r.perItem.cluster, 2)} | ${fmt(r.perItem.cluster / r.perItem.local)}× |`,
    `| one chunk (a job), µs | | ${fmt(r.perChunk.cluster)} | |`,
    `| lock acquire + release, uncontended, µs | ${fmt(r.lock.global)} (Global\\ Mutex) | ${fmt(r.lock.cluster)} (ClusterMutex) | ${fmt(r.lock.cluster / r.lock.global)}× |`,
    '',
    '| ~2 ms items, nodes of 1 runspace | 1 node | 2 nodes | 4 nodes |',
    '|---|---|---|---|',
    `| items/s | ${fmt(r.scaling[1])} | ${fmt(r.scaling[2])} (${fmt(r.scaling[2] / r.scaling[1], 2)}×) | ${fmt(r.scaling[4])} (${fmt(r.scaling[4] / r.scaling[1], 2)}×) |`,
    '',
    '| mutex across machines, µs per acquire + release | ClusterMutex | redis-semaphore Mutex |',
    '|---|---|---|',
    `| uncontended | ${fmt(r.lockPeer.uncontended.ours)} (${fmt(r.lockPeer.uncontended.peer / r.lockPeer.uncontended.ours, 2)}×) | ${fmt(r.lockPeer.uncontended.peer)} |`,
    `| 4 holders contending | ${fmt(r.lockPeer.contended.ours)} (${fmt(r.lockPeer.contended.peer / r.lockPeer.contended.ours, 2)}×) | ${fmt(r.lockPeer.contended.peer)} |`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { repeats, json } = benchArgs();
  const results = await runClusterBenchmark({ repeats: Number.isFinite(repeats) ? repeats : 3 });
  if (!results.skipped) console.log(`${results.machine}; medians of ${results.repeats} runs`);
  console.log(clusterTable(results));
  if (json) writeFileSync(json, JSON.stringify(results, null, 2));
  process.exit(0);
}
