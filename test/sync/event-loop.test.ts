import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';

/** Runs a script in a fresh Node process (the event loop's fate is what is tested). */
function runScript(source: string): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', source], { encoding: 'utf8', timeout: 20_000, cwd: process.cwd() }).trim();
}

describe('async waiters and the event loop', () => {
  test('an async waiter keeps the process alive until it gets the lock (no early exit)', () => {
    const out = runScript(`
      import { RunspacePool, Mutex } from 'runspaces';
      const pool = await RunspacePool.open({ maxRunspaces: 1 });
      const m = new Mutex();
      // A runspace holds the lock for a while; nothing else keeps this process alive.
      void pool.invoke((ctx) => { const mm = ctx.using.m; mm.waitOne(); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200); mm.releaseMutex(); }, { using: { m } });
      await new Promise((r) => setTimeout(r, 50));
      m.acquire().then(() => { console.log('acquired'); m.releaseMutex(); pool.close(); });
    `);
    expect(out).toBe('acquired');
  });

  test('a finished or aborted waiter does not keep the process alive', () => {
    const started = Date.now();
    const out = runScript(`
      import { Mutex, Semaphore } from 'runspaces';
      const m = new Mutex(true);
      const c = new AbortController();
      const waiting = m.acquire({ signal: c.signal }).catch((e) => e.code);
      const s = new Semaphore(0, 1);
      const timed = s.acquire({ timeout: 20 });
      c.abort();
      console.log(await waiting, await timed);
    `);
    expect(out).toBe('ERR_CANCELLED false');
    // Well under the 30 s slice a leaked wait would hold the loop for.
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
