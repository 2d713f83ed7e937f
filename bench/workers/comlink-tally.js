// The comlink side of the affinity benchmark: the same Tally, exposed on the worker's port.
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';

class Tally {
  constructor() {
    this.count = 0;
  }
  add(n) {
    this.count += n;
    return this.count;
  }
}

parentPort.once('message', async (message) => {
  if (message.expose) {
    Comlink.expose(new Tally(), nodeEndpoint(parentPort));
    parentPort.postMessage('ready');
    return;
  }
  // Calls the main thread's Tally from here, as a runspace calls a proxy of a main-thread object.
  const remote = Comlink.wrap(nodeEndpoint(message.port));
  parentPort.postMessage(await callLoop((n) => remote.add(n), message.calls));
});

async function callLoop(call, calls) {
  for (let i = 0; i < 2_000; i++) await call(1);
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await call(1);
  return ((performance.now() - t0) * 1000) / calls;
}
