// Experiment behind decision 0027: an awaited round trip to one bare worker by message,
// and through a SharedArrayBuffer slot (worker in Atomics.wait or Atomics.waitAsync,
// main thread in Atomics.waitAsync, with or without a 20 µs poll first).
//   node bench/experiments/shared-slot-round-trip.mjs msg|sab|asyncsab|asyncsabpoll
import { Worker } from 'node:worker_threads';
const mode = process.argv[2];
const N = 20000;
const sab = new SharedArrayBuffer(16);
const s = new Int32Array(sab); // [0]=state 0 idle,1 request,2 response; [1]=value
const w = new Worker(`
const { parentPort, workerData } = require('node:worker_threads');
const s = new Int32Array(workerData);
parentPort.on('message', (m) => { if (m === 'sab') loop(); else if (m === 'sabasync') aloop(); else parentPort.postMessage(m + 1); });
async function aloop() {
  for (;;) {
    const state = Atomics.load(s, 0);
    if (state !== 1) { const r = Atomics.waitAsync(s, 0, state); if (r.async) await r.value; }
    if (Atomics.load(s, 0) !== 1) continue;
    s[1] = s[1] + 1;
    Atomics.store(s, 0, 2);
    Atomics.notify(s, 0);
  }
}
function loop() {
  for (;;) {
    const st = Atomics.load(s, 0);
    if (st !== 1) Atomics.wait(s, 0, st);
    if (Atomics.load(s, 0) !== 1) continue;
    s[1] = s[1] + 1;
    Atomics.store(s, 0, 2);
    Atomics.notify(s, 0);
    if (s[1] < 0) break;
  }
}
`, { eval: true, workerData: sab });
let call;
if (mode === 'msg') {
  let resolveNext;
  w.on('message', (v) => resolveNext(v));
  call = (x) => new Promise((r) => { resolveNext = r; w.postMessage(x); });
} else {
  w.postMessage(mode.startsWith('async') ? 'sabasync' : 'sab');
  const pollUs = mode.endsWith('poll') ? 20 : 0;
  call = async (x) => {
    s[1] = x;
    Atomics.store(s, 0, 1);
    Atomics.notify(s, 0);
    if (pollUs > 0) {
      const end = performance.now() + pollUs / 1000;
      while (Atomics.load(s, 0) !== 2 && performance.now() < end);
    }
    if (Atomics.load(s, 0) !== 2) {
      const r = Atomics.waitAsync(s, 0, 1);
      if (r.async) await r.value;
    }
    const v = s[1];
    Atomics.store(s, 0, 0);
    Atomics.notify(s, 0);
    return v;
  };
}
for (let i = 0; i < 3000; i++) await call(i);
const t = performance.now();
for (let i = 0; i < N; i++) if ((await call(i)) !== i + 1) throw new Error('bad');
console.log(mode, ((performance.now() - t) / N * 1000).toFixed(1), 'µs');
process.exit(0);
