/**
 * Entry point of a runspace's worker thread: builds the initial session state
 * (variables, modules, startup scripts), tells the pool it is ready, then
 * serves tasks until the pool terminates it.
 *
 * @module
 */

import { parentPort, threadId, workerData } from 'node:worker_threads';
import { serializeError, type SerializedError } from '../protocol/error-codec.js';
import type { RunspaceBoot } from '../protocol/messages.js';
import { AffinityLink } from '../affinity/link.js';
import { adoptSyncArena } from '../sync/arena.js';
import { onCellsReleased } from '../sync/shared-cells.js';
import { installSessionState, MapSessionState } from './session-state.js';
import { SpinPolicy } from './spin-policy.js';
import { TaskLoop } from './task-loop.js';

if (parentPort === null) throw new Error('runspaces/runspace/worker.js must run as a worker thread');
const port = parentPort;
const boot = workerData as RunspaceBoot;
// Before any user code: named locks must resolve in the pool's arena.
adoptSyncArena(boot.syncArena);
// Primitives that crossed here and were collected: the pool stops tracking them.
onCellsReleased((cells) => port.postMessage({ type: 'released', cells }));

// Specifiers that are not relative resolve from here: 'runspaces' is this
// package itself (self-reference through its exports map), and other bare
// names find the user's node_modules above it.
const importFromWorker = (specifier: string): Promise<unknown> => import(specifier);

// Before any module loads: a module's top-level code may call sessionState().
const session = installSessionState(new MapSessionState(boot.variables));

const openErrors: SerializedError[] = [];
const modules: Record<string, unknown>[] = [];
for (const specifier of boot.modules) {
  try {
    modules.push((await import(specifier)) as Record<string, unknown>);
  } catch (error) {
    openErrors.push(serializeError(error));
    modules.push({});
  }
}

// Objects of affinity classes cross through it; the main thread is at its other end.
const link = new AffinityLink(boot.affinityPort, 0, boot.classInstances);
const loop = new TaskLoop(port, importFromWorker, threadId, session, modules, new Int32Array(boot.control), new SpinPolicy(boot.spinBeforeSleepUs / 1000, new Int32Array(boot.spinGate)), link, boot.concurrency);

for (const definition of boot.startup) {
  try {
    await loop.runStartup(loop.compile(definition));
  } catch (error) {
    openErrors.push(serializeError(error));
  }
}

port.on('message', loop.receive);
port.postMessage({ type: 'ready', openErrors });
