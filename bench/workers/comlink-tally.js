// The comlink side of the affinity benchmark: the same Tally, exposed on the worker's port.
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { awaitedCallMicros } from '../stats.js';

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
  parentPort.postMessage(await awaitedCallMicros((n) => remote.add(n), message.calls));
});
