// The deployment-status scenario: separate processes (scheduled tasks, CLI
// runs, services) and the runspaces inside them read and write one status
// file. A machine-wide mutex keeps every read-modify-write whole, and each
// write replaces the file atomically, so a reader never sees half a file and
// a writer killed mid-write loses only its own update.
//
// Import it anywhere, a runspace included:
//   import { getDeploymentStatus, updateDeploymentStatus } from './deployment-status.js';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { Mutex } from 'runspaces';

/** The mutex every process takes around the status file (PowerShell's `Global\AzureStackDeploymentStatus`). */
export const STATUS_MUTEX = 'Global\\deployment-status';

/** Where the status lives unless a call says otherwise: `DEPLOYMENT_STATUS_FILE`, else the OS temp dir. */
export function defaultStatusFile() {
  return process.env.DEPLOYMENT_STATUS_FILE ?? join(tmpdir(), 'deployment-status.json');
}

/** The status of a deployment nobody has touched yet. */
export function initialStatus() {
  return { revision: 0, steps: {}, recoveries: 0 };
}

/**
 * Reads the status under the mutex.
 * @param {{ file?: string, timeout?: number }} [options]
 */
export async function getDeploymentStatus(options = {}) {
  const file = options.file ?? defaultStatusFile();
  return withStatusLock(() => readStatus(file), options);
}

/**
 * Applies one change under the mutex and writes the result atomically.
 * `change` is either an object of step states merged into `steps`, or a
 * function given a copy of the status that returns the next one (or edits
 * the copy). Resolves to `{ status, recovered }`, where `recovered` is true
 * when the previous holder died holding the mutex: the file is still whole
 * (every write is atomic), so the update goes ahead and is counted.
 *
 * @param {Record<string, string> | ((status: object) => object | void | Promise<object | void>)} change
 * @param {{ file?: string, timeout?: number }} [options]
 */
export async function updateDeploymentStatus(change, options = {}) {
  const file = options.file ?? defaultStatusFile();
  return withStatusLock(async ({ abandoned }) => {
    const current = await readStatus(file);
    const draft = structuredClone(current);
    const next = typeof change === 'function' ? ((await change(draft)) ?? draft) : { ...draft, steps: { ...draft.steps, ...change } };
    next.revision = current.revision + 1;
    if (abandoned) next.recoveries = current.recoveries + 1;
    await writeAtomically(file, next);
    return { status: next, recovered: abandoned };
  }, options);
}

// Invoke-ActionWithMutex, without its traps: the wait is bounded, an
// abandoned mutex is reported instead of swallowed, and the release happens
// whatever the action does.
function withStatusLock(action, { timeout = 30_000 } = {}) {
  const { mutex } = Mutex.open(STATUS_MUTEX);
  return mutex.withLock(action, { timeout, onAbandoned: 'continue' });
}

async function readStatus(file) {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    if (error.code === 'ENOENT') return initialStatus();
    throw error;
  }
}

// Write beside the target, flush to disk, then rename over it: a rename within
// one directory is atomic, so the file is always the old status or the new one.
async function writeAtomically(file, status) {
  const temporary = `${file}.${process.pid}.${threadId}.tmp`;
  const handle = await open(temporary, 'w', 0o644);
  try {
    await handle.writeFile(JSON.stringify(status, null, 2));
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temporary, { force: true });
    throw error;
  }
  await handle.close();
  await rename(temporary, file);
}
