// Which engine carries work between machines: BullMQ (jobs with leases,
// stalled-job recovery, retries) or Redis Streams driven by hand? Measures
// one job's round trip and bulk throughput for each on a local redis-server.
// Run: node bench/experiments/cluster-engine.mjs (needs redis-server on PATH).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';

const port = 16_000 + Math.floor(Math.random() * 1000);
const dir = mkdtempSync(join(tmpdir(), 'engine-'));
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
for (let i = 0; i < 100; i++) {
  try {
    const probe = new Redis({ ...connection, lazyConnect: true });
    await probe.connect();
    await probe.quit();
    break;
  } catch {
    await delay(50);
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const ROUND_TRIPS = 300;
const BULK = 5_000;

// ---- BullMQ
{
  const queue = new Queue('engine', { connection });
  const events = new QueueEvents('engine', { connection });
  await events.waitUntilReady();
  const worker = new Worker('engine', async (job) => job.data.n * 2, { connection, concurrency: 16 });
  await worker.waitUntilReady();
  const times = [];
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const started = performance.now();
    const job = await queue.add('rt', { n: i });
    await job.waitUntilFinished(events);
    times.push(performance.now() - started);
  }
  let done = 0;
  const all = new Promise((resolve) => worker.on('completed', () => ++done === BULK && resolve()));
  const started = performance.now();
  for (let i = 0; i < BULK; i += 500) await queue.addBulk(Array.from({ length: 500 }, (_, j) => ({ name: 'bulk', data: { n: i + j }, opts: { removeOnComplete: true } })));
  await all;
  const seconds = (performance.now() - started) / 1000;
  console.log(`BullMQ 6: round trip median ${(median(times) * 1000).toFixed(0)} µs; ${BULK} jobs in ${seconds.toFixed(2)} s = ${Math.round(BULK / seconds)} jobs/s`);
  await worker.close();
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
}

// ---- Redis Streams by hand
{
  const caller = new Redis(connection);
  const reader = new Redis(connection);
  const consumer = new Redis(connection);
  await caller.xgroup('CREATE', 'req', 'nodes', '$', 'MKSTREAM');
  let stop = false;
  const serve = (async () => {
    while (!stop) {
      const got = await consumer.xreadgroup('GROUP', 'nodes', 'c1', 'COUNT', 100, 'BLOCK', 100, 'STREAMS', 'req', '>');
      if (!got) continue;
      const pipeline = consumer.pipeline();
      for (const [id, fields] of got[0][1]) {
        pipeline.xadd('rep', '*', 'id', fields[1], 'v', String(Number(fields[3]) * 2));
        pipeline.xack('req', 'nodes', id);
      }
      await pipeline.exec();
    }
  })();
  let last = '$';
  const times = [];
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const started = performance.now();
    await caller.xadd('req', '*', 'id', String(i), 'n', String(i));
    const got = await reader.xread('BLOCK', 1000, 'STREAMS', 'rep', last);
    last = got[0][1].at(-1)[0];
    times.push(performance.now() - started);
  }
  const started = performance.now();
  for (let i = 0; i < BULK; i += 500) {
    const pipeline = caller.pipeline();
    for (let j = 0; j < 500; j++) pipeline.xadd('req', '*', 'id', String(i + j), 'n', String(i + j));
    await pipeline.exec();
  }
  let received = 0;
  while (received < BULK) {
    const got = await reader.xread('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', 'rep', last);
    if (!got) continue;
    received += got[0][1].length;
    last = got[0][1].at(-1)[0];
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`Streams: round trip median ${(median(times) * 1000).toFixed(0)} µs; ${BULK} messages in ${seconds.toFixed(2)} s = ${Math.round(BULK / seconds)} msg/s`);
  stop = true;
  await serve;
  for (const client of [caller, reader, consumer]) client.disconnect();
}

server.kill();
rmSync(dir, { recursive: true, force: true });
