// The contended row of bench/sync.js alone: 2 runspaces hammering one Mutex against the bare
// three-state mutex (bench/sync.js's own loops), six rounds alternating, printing each round's
// ratio (higher = closer to bare) and the uncontended time ratio. Pass another build's
// dist/bundle/index.js to compare commits.
//   node bench/experiments/contended-mutex.mjs [path/to/dist/bundle/index.js]
import { loops } from '../sync.js';

const { Mutex, RunspacePool } = await import(process.argv[2] ?? new URL('../../dist/bundle/index.js', import.meta.url).href);
const pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2, spinBeforeSleep: 0 });

async function run(kind, count, n) {
  const start = new Int32Array(new SharedArrayBuffer(8));
  const using = { lock: kind === 'bare' ? new SharedArrayBuffer(4) : new Mutex(), start: start.buffer, turn: new SharedArrayBuffer(4) };
  const runs = Array.from({ length: count }, (_, index) => pool.invoke(loops[kind], { args: ['loop', n, index], using }));
  while (Atomics.load(start, 1) < count) await new Promise((r) => setTimeout(r, 1));
  const t0 = performance.now();
  Atomics.store(start, 0, 1); Atomics.notify(start, 0);
  const each = await Promise.all(runs);
  return { ms: performance.now() - t0, each };
}
const ratios = []; const unc = [];
for (let round = 0; round < 6; round++) {
  const b = await run('bare', 2, 1_000_000); const m = await run('mutex', 2, 1_000_000);
  ratios.push((b.ms / m.ms).toFixed(2));
  const ub = await run('bare', 1, 2_000_000); const um = await run('mutex', 1, 2_000_000);
  unc.push((um.each[0] / ub.each[0]).toFixed(2));
}
console.log('contended mutex/bare:', ratios.join(' '), ' uncontended mutex/bare time:', unc.join(' '));
await pool.close();
