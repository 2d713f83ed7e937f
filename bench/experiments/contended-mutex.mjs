// The contended row of bench/sync.js alone: 2 runspaces hammering one Mutex against the bare
// three-state mutex, six rounds alternating, printing each round's ratio (higher = closer to bare)
// and the uncontended time ratio. Pass another build's dist/bundle/index.js to compare commits.
//   node bench/experiments/contended-mutex.mjs [path/to/dist/bundle/index.js]
const { Mutex, RunspacePool } = await import(process.argv[2] ?? new URL('../../dist/bundle/index.js', import.meta.url).href);
const pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2, spinBeforeSleep: 0 });
const loopMutex = (ctx, n) => {
  const m = ctx.using.lock;
  const gate = new Int32Array(ctx.using.start);
  Atomics.add(gate, 1, 1); Atomics.wait(gate, 0, 0);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) { m.waitOne(); m.releaseMutex(); }
  return performance.now() - t0;
};
const loopBare = (ctx, n) => {
  const cells = new Int32Array(ctx.using.lock);
  const lock = () => {
    if (Atomics.compareExchange(cells, 0, 0, 1) === 0) return;
    for (let i = 0; i < 100; i++) if (Atomics.load(cells, 0) === 0 && Atomics.compareExchange(cells, 0, 0, 1) === 0) return;
    let c = Atomics.exchange(cells, 0, 2);
    while (c !== 0) { Atomics.wait(cells, 0, 2); c = Atomics.exchange(cells, 0, 2); }
  };
  const unlock = () => { if (Atomics.exchange(cells, 0, 0) === 2) Atomics.notify(cells, 0, 1); };
  const gate = new Int32Array(ctx.using.start);
  Atomics.add(gate, 1, 1); Atomics.wait(gate, 0, 0);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) { lock(); unlock(); }
  return performance.now() - t0;
};
async function run(kind, count, n) {
  const start = new Int32Array(new SharedArrayBuffer(8));
  const using = { lock: kind === 'bare' ? new SharedArrayBuffer(4) : new Mutex(), start: start.buffer };
  const runs = Array.from({ length: count }, () => pool.invoke(kind === 'bare' ? loopBare : loopMutex, { args: [n], using }));
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
