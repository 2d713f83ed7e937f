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
