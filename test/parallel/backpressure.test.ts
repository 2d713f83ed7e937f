import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { RunspacePool } from 'runspaces';

/** Lets the loop run on against a consumer that stopped reading, then reports how many items it took. */
async function pulledWhileStalled(highWaterMark: number | undefined, outputBytes: number): Promise<number> {
  await using pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
  let pulled = 0;
  function* endless(): Generator<number> {
    for (;;) yield ++pulled;
  }
  const abort = new AbortController();
  const loop = pool.forEachParallel(endless(), (i: number, ctx) => `${i}`.padEnd(ctx.using.bytes as number, 'o'), {
    signal: abort.signal, highWaterMark, using: { bytes: outputBytes },
  });
  const iterator = loop[Symbol.asyncIterator]();
  await iterator.next();
  // A stalled consumer: give the loop ample time to take whatever it would take.
  let seen = -1;
  while (seen !== pulled) {
    seen = pulled;
    await delay(200);
  }
  abort.abort();
  await loop.stop();
  return pulled;
}

describe('highWaterMark bounds what a loop holds', () => {
  test('with highWaterMark 1 and 100 KB outputs, a stalled consumer holds a few outputs, not thousands', async () => {
    // One consumed, one held, one item per runspace lane in flight.
    expect(await pulledWhileStalled(1, 100_000)).toBeLessThanOrEqual(1 + 1 + 2);
  });

  test('with the default highWaterMark, tiny outputs stay within 1024 plus a lane each', async () => {
    expect(await pulledWhileStalled(undefined, 1)).toBeLessThanOrEqual(1 + 1024 + 2);
  });
});
