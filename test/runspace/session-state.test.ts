import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RunspacePool, sessionState } from 'runspaces';

const sessionAware = new URL('../fixtures/session-aware.js', import.meta.url);
let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({
    minRunspaces: 2,
    maxRunspaces: 2,
    initialSessionState: { variables: { region: 'eu' }, modules: [sessionAware] },
  });
});
afterAll(() => pool.close());

describe('sessionState()', () => {
  test('in a runspace it is ctx.session, both ways, across calls', async () => {
    const rs = await pool.acquire();
    try {
      const same = await rs.invoke(async (ctx) => {
        const { sessionState: current } = await import('runspaces');
        ctx.session.set('fromContext', 1);
        current().set('fromFunction', 2);
        return current() === ctx.session;
      });
      expect(same).toBe(true);
      expect(await rs.invoke((ctx) => [ctx.session.get('fromFunction'), ctx.session.get('fromContext')])).toEqual([2, 1]);
    } finally {
      rs.release();
    }
  });

  test("a module's top-level code already sees the initial session; each runspace counts its own visits", async () => {
    expect(await pool.invoke({ module: sessionAware, export: 'region' })).toBe('eu');
    const [first, second] = await Promise.all([pool.acquire(), pool.acquire()]);
    try {
      const visit = (rs: typeof first) => rs.invoke({ module: sessionAware, export: 'countVisit' });
      expect([await visit(first), await visit(first), await visit(second), await visit(first)]).toEqual([1, 2, 1, 3]);
    } finally {
      first.release();
      second.release();
    }
  });

  test('the main thread has a session of its own, which runspaces do not see', async () => {
    sessionState().set('mainOnly', true);
    expect(sessionState().get('mainOnly')).toBe(true);
    expect(await pool.invoke((ctx) => ctx.session.has('mainOnly'))).toBe(false);
  });
});
