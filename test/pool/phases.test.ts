import { describe, expect, test } from 'vitest';
import { canMove, type RunspacePhase } from '../../dist/pool/runspace-phase.js';
import { RunspaceHost, type HostEvents } from '../../dist/pool/runspace-host.js';
import { InvariantError } from '../../dist/util/invariant.js';

const PHASES: RunspacePhase[] = ['opening', 'idle', 'busy', 'acquired', 'releasing', 'dedicated', 'retiring', 'exited'];

/** Every legal move, written out once more so that a change to the table is a deliberate one. */
const LEGAL = new Set([
  'opening>idle', 'opening>retiring', 'opening>exited',
  'idle>busy', 'idle>acquired', 'idle>retiring', 'idle>exited',
  'busy>idle', 'busy>retiring', 'busy>exited',
  'acquired>releasing', 'acquired>idle', 'acquired>retiring', 'acquired>exited',
  'releasing>idle', 'releasing>retiring', 'releasing>exited',
  'dedicated>retiring', 'dedicated>exited',
  'retiring>exited',
]);

describe('runspace phases', () => {
  test('the transition table allows exactly the designed moves', () => {
    for (const from of PHASES) {
      for (const to of PHASES) expect(canMove(from, to), `${from} -> ${to}`).toBe(LEGAL.has(`${from}>${to}`));
    }
  });

  test('every phase but exited can die or be retired; nothing leaves exited', () => {
    for (const from of PHASES.filter((phase) => phase !== 'exited')) expect(canMove(from, 'exited')).toBe(true);
    for (const from of PHASES.filter((phase) => phase !== 'exited' && phase !== 'retiring')) expect(canMove(from, 'retiring')).toBe(true);
    for (const to of PHASES) expect(canMove('exited', to)).toBe(false);
  });

  test('a runspace refuses an illegal move loudly and follows a legal life: opening, idle, acquired, releasing, idle, retiring, exited', async () => {
    let markReady!: () => void;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    const events: HostEvents = {
      ready: () => markReady(),
      taskDone: () => {},
      progressed: () => {},
      record: () => {},
      partial: () => {},
      itemStarted: () => {},
      exited: () => {},
    };
    const host = new RunspaceHost({ variables: {}, modules: [], startup: [], resourceLimits: undefined, env: undefined, argv: undefined, execArgv: undefined, spinBeforeSleepUs: 0, concurrency: 1, classInstances: 'refuse' }, events, false);
    expect(host.phase).toBe('opening');
    expect(() => host.moveTo('busy')).toThrow(InvariantError);
    expect(() => host.moveTo('releasing')).toThrow(/cannot move from 'opening' to 'releasing'/);
    await ready;
    for (const phase of ['idle', 'acquired', 'releasing', 'idle'] as const) {
      host.moveTo(phase);
      expect(host.phase).toBe(phase);
    }
    await host.terminate('test over');
    expect(host.phase).toBe('exited');
    expect(() => host.moveTo('idle')).toThrow(InvariantError);
  });

  test('a dedicated runspace is never idle: it only retires or exits', async () => {
    const events: HostEvents = { ready: () => {}, taskDone: () => {}, progressed: () => {}, record: () => {}, partial: () => {}, itemStarted: () => {}, exited: () => {} };
    const host = new RunspaceHost({ variables: {}, modules: [], startup: [], resourceLimits: undefined, env: undefined, argv: undefined, execArgv: undefined, spinBeforeSleepUs: 0, concurrency: 1, classInstances: 'refuse' }, events, true);
    expect(host.phase).toBe('dedicated');
    expect(() => host.moveTo('idle')).toThrow(InvariantError);
    await host.terminate('test over');
    expect(host.phase).toBe('exited');
  });
});
