// Quick calls travel several to a runspace; one that blocks must not hold
// the calls sent with it. Once a function is measured quick, three calls
// that wait for one another (a gate all must reach, a Barrier) were batched
// onto one runspace and never all ran: a deadlock. The pool now takes back
// the calls a stuck runspace has not begun and runs them elsewhere.
import { expect, test } from 'vitest';
import { Barrier, RunspacePool, type RunspaceContext } from 'runspaces';
import { blockOnGate, Gate } from '../helpers.js';

test('calls measured quick that wait for one another all run, each once, on runspaces of their own', async () => {
  await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 3 });
  const warm = new Gate();
  warm.open();
  // Teaches the pool that blockOnGate is quick: from now on its calls are batched.
  for (let i = 0; i < 20; i++) await pool.invoke(blockOnGate, { using: { gate: warm.buffer } });
  for (let round = 0; round < 5; round++) {
    const gate = new Gate();
    const calls = Array.from({ length: 3 }, () => pool.invoke(blockOnGate, { using: { gate: gate.buffer } }));
    await gate.arrivals(3);
    gate.open();
    const runspaces = await Promise.all(calls);
    expect(new Set(runspaces).size).toBe(3);
    // Each call ran once: a call taken back is never also run where it was first sent.
    expect(gate.arrived).toBe(3);
  }
});

test('three calls meeting at a Barrier of 3 all pass it, after the script block was measured quick', async () => {
  await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 3 });
  const meet = (ctx: RunspaceContext<{ barrier: Barrier }>) => {
    ctx.using.barrier.signalAndWait();
    return ctx.using.barrier.currentPhaseNumber;
  };
  const warmUp = new Barrier(1);
  for (let i = 0; i < 20; i++) await pool.invoke(meet, { using: { barrier: warmUp } });
  const barrier = new Barrier(3);
  expect(await Promise.all([0, 1, 2].map(() => pool.invoke(meet, { using: { barrier } })))).toEqual([1, 1, 1]);
});

test('a stuck batch of 200 quick calls: those taken back run elsewhere, and every call runs exactly once', async () => {
  await using pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 2 });
  const runs = new Int32Array(new SharedArrayBuffer(4 * 200));
  const gate = new Gate();
  // Call 0 blocks on the gate; every call counts its runs in its own cell.
  const counted = (ctx: RunspaceContext<{ runs: Int32Array; gate: SharedArrayBuffer }>, index: number) => {
    Atomics.add(ctx.using.runs, index, 1);
    if (index === 0) {
      const cells = new Int32Array(ctx.using.gate);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
      Atomics.wait(cells, 0, 0);
    }
    return index;
  };
  const warm = new Int32Array(new SharedArrayBuffer(4 * 200));
  for (let i = 1; i < 40; i++) await pool.invoke(counted, { args: [i], using: { runs: warm, gate: gate.buffer } });
  // The 200 calls wait in line while the one runspace is held, then go to it as one batch.
  pool.setMaxRunspaces(1);
  const held = await pool.acquire();
  let settled = 0;
  const calls = Array.from({ length: 200 }, (_, i) => pool.invoke(counted, { args: [i], using: { runs, gate: gate.buffer } }).finally(() => settled++));
  held.release();
  await gate.arrivals(1);
  pool.setMaxRunspaces(2);
  // Calls behind the stuck one finish elsewhere while it still blocks: all that were taken back
  // (at least 56 of a batch of 200: a call whose cancel slot another in flight shares stays).
  while (settled < 50) await new Promise((resolve) => setTimeout(resolve, 10));
  gate.open();
  expect(await Promise.all(calls)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  // The runspace that was stuck has passed every call it was sent (the last of them stayed with it).
  expect([...runs]).toEqual(new Array(200).fill(1));
});

