import { describe, expect, test } from 'vitest';
import { SpinPolicy } from '../../dist/runspace/spin-policy.js';
import { nextSpareCores, pollingAllowed } from '../../dist/pool/spare-cores.js';

const openGate = (): Int32Array => {
  const gate = new Int32Array(new SharedArrayBuffer(8));
  gate[0] = 1;
  return gate;
};

describe('SpinPolicy: polling only when it pays', () => {
  test('a closed gate (no core to spare) means no polling', () => {
    const gate = openGate();
    const policy = new SpinPolicy(0.1, gate);
    expect(policy.shouldPoll()).toBe(true);
    Atomics.store(gate, 0, 0);
    expect(policy.shouldPoll()).toBe(false);
  });

  test('a budget of 0 never polls', () => {
    expect(new SpinPolicy(0, openGate()).shouldPoll()).toBe(false);
  });

  test('polls that find nothing pause polling, for longer after each failed retry', () => {
    const policy = new SpinPolicy(0.1, openGate());
    const pauseAfterMisses = (): number => {
      for (let i = 0; i < 4; i++) {
        expect(policy.shouldPoll()).toBe(true);
        policy.polled(false, 0.1);
      }
      let paused = 0;
      while (!policy.shouldPoll()) paused++;
      return paused;
    };
    expect(pauseAfterMisses()).toBe(8);
    policy.polled(false, 0.1); // the retry itself found nothing either
    // Three more misses complete the next run of four.
    for (let i = 0; i < 3; i++) {
      expect(policy.shouldPoll()).toBe(true);
      policy.polled(false, 0.1);
    }
    let paused = 0;
    while (!policy.shouldPoll()) paused++;
    expect(paused).toBe(16);
  });

  test('a poll that finds work resets the count and the pause', () => {
    const policy = new SpinPolicy(0.1, openGate());
    for (let round = 0; round < 100; round++) {
      for (let i = 0; i < 3; i++) {
        expect(policy.shouldPoll()).toBe(true);
        policy.polled(false, 0.1);
      }
      expect(policy.shouldPoll()).toBe(true);
      policy.polled(true, 0.01);
    }
  });

  test('polling time is reported to the gate in microseconds, wrapping like the counter', () => {
    const gate = openGate();
    Atomics.store(gate, 1, 2 ** 31 - 10);
    const policy = new SpinPolicy(0.1, gate);
    policy.polled(true, 0.025);
    expect((Atomics.load(gate, 1) - (2 ** 31 - 10)) >>> 0).toBe(25);
  });
});

describe('spare cores: the gate opens only when polling takes no one a core', () => {
  test('an idle machine allows polling, one with no idle time does not', () => {
    // Figures measured on 2 cores (see spare-cores.ts).
    expect(pollingAllowed(nextSpareCores(Infinity, { idleMs: 40, polledMs: 80, wallMs: 100 }))).toBe(true);
    expect(pollingAllowed(nextSpareCores(Infinity, { idleMs: 100, polledMs: 0, wallMs: 100 }))).toBe(true);
    expect(pollingAllowed(nextSpareCores(Infinity, { idleMs: 5, polledMs: 5, wallMs: 100 }))).toBe(false);
  });

  test('one noisy sample does not flip a settled value', () => {
    let spare = Infinity;
    for (let i = 0; i < 10; i++) spare = nextSpareCores(spare, { idleMs: 120, polledMs: 0, wallMs: 100 });
    expect(pollingAllowed(nextSpareCores(spare, { idleMs: 0, polledMs: 0, wallMs: 100 }))).toBe(true);
    expect(pollingAllowed(nextSpareCores(nextSpareCores(spare, { idleMs: 0, polledMs: 0, wallMs: 100 }), { idleMs: 0, polledMs: 0, wallMs: 100 }))).toBe(false);
  });

  test('a period without elapsed time changes nothing', () => {
    expect(nextSpareCores(0.7, { idleMs: 0, polledMs: 0, wallMs: 0 })).toBe(0.7);
  });
});
