/**
 * One adapter per pool library, all running the same tiny task (x => x + 1)
 * with the same number of threads, so the pool benchmark compares like with
 * like. A peer that is not installed is skipped with a note, not a crash.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const worker = (name) => new URL(`./workers/${name}`, import.meta.url);

export const adapters = {
  async runspaces(threads) {
    const { RunspacePool } = await import('runspaces');
    // Like the peers' constructors: start opening, and let calls start on the
    // first runspace that is ready (awaiting open() waits for all of them).
    const pool = new RunspacePool({ minRunspaces: threads, maxRunspaces: threads });
    const opened = pool.open();
    return { run: (x) => pool.invoke((ctx, n) => n + 1, { args: [x] }), close: async () => { await opened; await pool.close(); } };
  },
  async piscina(threads) {
    const { Piscina } = await import('piscina');
    const pool = new Piscina({ filename: worker('increment.js').href, minThreads: threads, maxThreads: threads });
    return { run: (x) => pool.run(x), close: () => pool.destroy() };
  },
  async tinypool(threads) {
    const { Tinypool } = await import('tinypool');
    const pool = new Tinypool({ filename: worker('increment.js').href, minThreads: threads, maxThreads: threads });
    return { run: (x) => pool.run(x), close: () => pool.destroy() };
  },
  async workerpool(threads) {
    const workerpool = require('workerpool');
    const pool = workerpool.pool(worker('increment-workerpool.cjs').pathname, { minWorkers: threads, maxWorkers: threads, workerType: 'thread' });
    return { run: (x) => pool.exec('increment', [x]), close: () => pool.terminate() };
  },
  async poolifier(threads) {
    const { FixedThreadPool } = await import('poolifier');
    const pool = new FixedThreadPool(threads, worker('increment-poolifier.js').pathname, { enableTasksQueue: true });
    return { run: (x) => pool.execute(x), close: () => pool.destroy() };
  },
};

export async function available(name) {
  if (name === 'runspaces') return true;
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
}
