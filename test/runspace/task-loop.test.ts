import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { expect, test } from 'vitest';
import { AffinityLink } from '../../dist/affinity/link.js';
import { CONTROL_SLOTS } from '../../dist/protocol/messages.js';
import { MapSessionState } from '../../dist/runspace/session-state.js';
import { SpinPolicy } from '../../dist/runspace/spin-policy.js';
import { TaskLoop } from '../../dist/runspace/task-loop.js';

// A runspace fed quick calls without pause: each time its queue ran dry it
// polled, found the next call, and started a drain inside the one still on
// the stack, until the stack overflowed and the runspace hung with calls in
// flight (seen under a profiler, which slows the runspace enough to find
// work at every idle moment).
test('a runspace that finds the next call at every idle moment keeps a flat stack', async () => {
  const calls = new MessageChannel();
  const affinity = new MessageChannel();
  const gate = new Int32Array(new SharedArrayBuffer(8));
  gate[0] = 1;
  const loop = new TaskLoop(
    calls.port1,
    (specifier) => import(specifier),
    1,
    new MapSessionState({ answer: 42 }),
    [],
    new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4)),
    new SpinPolicy(5, gate),
    new AffinityLink(affinity.port1, 0),
  );
  const CALLS = 30_000;
  // Every call is waiting before the first runs: every poll finds the next.
  for (let seq = 2; seq <= CALLS; seq++) {
    calls.port2.postMessage({ type: 'run', tasks: [{ seq, fn: { kind: 'getVariable', name: 'answer' }, args: [], using: undefined }] });
  }
  loop.receive({ type: 'run', tasks: [{ seq: 1, fn: { kind: 'getVariable', name: 'answer' }, args: [], using: undefined }] });

  let answered = 0;
  let failed = 0;
  const deadline = Date.now() + 30_000;
  while (answered + failed < CALLS && Date.now() < deadline) {
    const received = receiveMessageOnPort(calls.port2);
    if (received === undefined) {
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    const message = received.message as { type: string; results?: { ok: boolean; value?: unknown }[] };
    for (const result of message.results ?? []) {
      if (result.ok && result.value === 42) answered++;
      else failed++;
    }
  }
  calls.port1.close();
  affinity.port1.close();
  expect({ answered, failed }).toEqual({ answered: CALLS, failed: 0 });
});
