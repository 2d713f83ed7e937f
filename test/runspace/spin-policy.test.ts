import { describe, expect, test } from 'vitest';
import { SpinPolicy } from '../../dist/runspace/spin-policy.js';
import { nextFreeCores, pollingAllowed } from '../../dist/pool/spare-cores.js';

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
        policy.polled(false);
      }
      let paused = 0;
      while (!policy.shouldPoll()) paused++;
      return paused;
    };
    expect(pauseAfterMisses()).toBe(8);
    policy.polled(false); // the retry itself found nothing either
    // Three more misses complete the next run of four.
    for (let i = 0; i < 3; i++) {
      expect(policy.shouldPoll()).toBe(true);
      policy.polled(false);
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
        policy.polled(false);
      }
      expect(policy.shouldPoll()).toBe(true);
      policy.polled(true);
    }
  });

});

describe('free cores: the gate closes only when other processes take the cores', () => {
  test('an idle machine, or one busy with this process alone, allows polling; another process on one of 2 cores does not', () => {
    // Figures measured on 2 cores (see spare-cores.ts): idle time plus this process's CPU time, per ms.
    expect(pollingAllowed(nextFreeCores(Infinity, { idleMs: 40, ownCpuMs: 160, wallMs: 100 }))).toBe(true);
    expect(pollingAllowed(nextFreeCores(Infinity, { idleMs: 0, ownCpuMs: 195, wallMs: 100 }))).toBe(true);
    expect(pollingAllowed(nextFreeCores(Infinity, { idleMs: 5, ownCpuMs: 95, wallMs: 100 }))).toBe(false);
  });

  test('one noisy sample does not flip a settled value', () => {
    let free = Infinity;
    for (let i = 0; i < 10; i++) free = nextFreeCores(free, { idleMs: 100, ownCpuMs: 100, wallMs: 100 });
    const quiet = { idleMs: 0, ownCpuMs: 100, wallMs: 100 };
    expect(pollingAllowed(nextFreeCores(free, quiet))).toBe(true);
    expect(pollingAllowed(nextFreeCores(nextFreeCores(free, quiet), quiet))).toBe(false);
  });

  test('a period without elapsed time changes nothing', () => {
    expect(nextFreeCores(1.7, { idleMs: 0, ownCpuMs: 0, wallMs: 0 })).toBe(1.7);
  });
});
