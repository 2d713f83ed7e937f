import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Barrier, BarrierPostPhaseError, InvalidArgumentError, InvalidOperationError, RunspacePool, WaitHandleNotFoundError, type RunspaceContext } from 'runspaces';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 3, maxRunspaces: 3 });
});
afterAll(() => pool.close());

describe('Barrier', () => {
  test('no participant starts a phase before all finished the previous one, over 2000 phases', async () => {
    const phases = 2_000;
    const barrier = new Barrier(4);
    // progress[i] = phases completed by participant i
    const progress = new Int32Array(new SharedArrayBuffer(16));
    const check = (mine: number, all: Int32Array) => {
      for (let j = 0; j < 4; j++) if (Math.abs(Atomics.load(all, j) - mine) > 1) return false;
      return true;
    };
    const runspaces = [0, 1, 2].map((i) => pool.invoke((ctx: RunspaceContext<{ barrier: Barrier; progress: SharedArrayBuffer }>, index: number, rounds: number) => {
      const all = new Int32Array(ctx.using.progress);
      let ok = true;
      for (let phase = 0; phase < rounds; phase++) {
        for (let j = 0; j < 4; j++) if (Math.abs(Atomics.load(all, j) - phase) > 1) ok = false;
        Atomics.store(all, index, phase + 1);
        ctx.using.barrier.signalAndWait();
      }
      return ok;
    }, { args: [i, phases], using: { barrier, progress: progress.buffer } }));
    let mainOk = true;
    for (let phase = 0; phase < phases; phase++) {
      if (!check(phase, progress)) mainOk = false;
      Atomics.store(progress, 3, phase + 1);
      await barrier.signalAndWaitAsync();
    }
    expect(await Promise.all(runspaces)).toEqual([true, true, true]);
    expect(mainOk).toBe(true);
    expect(barrier.currentPhaseNumber).toBe(phases % 32768);
  });

  test('the post-phase action runs once per phase, in whichever thread arrives last', async () => {
    const counter = new Int32Array(new SharedArrayBuffer(4));
    const barrier = new Barrier(3, function countPhase(b) {
      // Runs in the last thread to arrive: no closure, as for script blocks.
      const cells = new Int32Array((globalThis as unknown as { __phaseCells: SharedArrayBuffer }).__phaseCells);
      Atomics.add(cells, 0, 1);
      void b;
    });
    (globalThis as unknown as { __phaseCells: SharedArrayBuffer }).__phaseCells = counter.buffer;
    const setup = (ctx: RunspaceContext<{ cells: SharedArrayBuffer }>) => {
      (globalThis as unknown as { __phaseCells: SharedArrayBuffer }).__phaseCells = ctx.using.cells;
    };
    const rs = [await pool.acquire(), await pool.acquire()];
    for (const r of rs) await r.invoke(setup, { using: { cells: counter.buffer } });
    await Promise.all([
      ...rs.map((r) => r.invoke((ctx) => { for (let i = 0; i < 200; i++) (ctx.using.barrier as Barrier).signalAndWait(); }, { using: { barrier } })),
      (async () => { for (let i = 0; i < 200; i++) await barrier.signalAndWaitAsync(); })(),
    ]);
    for (const r of rs) r.release();
    expect(counter[0]).toBe(200);
  });

  test('a participant that times out is taken back out of the phase', async () => {
    const barrier = new Barrier(2);
    expect(await barrier.signalAndWaitAsync({ timeout: 10 })).toBe(false);
    expect(barrier.participantsRemaining).toBe(2);
    const first = barrier.signalAndWaitAsync({ timeout: 5_000 });
    expect(await barrier.signalAndWaitAsync()).toBe(true);
    expect(await first).toBe(true);
    expect(barrier.currentPhaseNumber).toBe(1);
  });

  test('participants can be added and removed; removing the last missing one completes the phase', async () => {
    const barrier = new Barrier(1);
    expect(barrier.addParticipants(2)).toBe(0);
    expect(barrier.participantCount).toBe(3);
    const waiting = barrier.signalAndWaitAsync({ timeout: 5_000 });
    const second = barrier.signalAndWaitAsync({ timeout: 5_000 });
    barrier.removeParticipants(1);
    expect(await Promise.all([waiting, second])).toEqual([true, true]);
    expect(() => barrier.removeParticipants(5)).toThrow(InvalidArgumentError);
    await expect(new Barrier(0).signalAndWaitAsync()).rejects.toThrow(InvalidOperationError);
  });

  // dotnet/runtime BarrierTests: RemovingParticipants, RemovingWaitingParticipants,
  // RunBarrierRemoveParticipantsTests_NegativeTests.
  test('removing participants fails as .NET\'s does: none there, more than there are, more than have not arrived', async () => {
    expect(() => new Barrier(0).removeParticipants(1)).toThrow(InvalidOperationError);
    expect(() => new Barrier(2).removeParticipants(3)).toThrow(InvalidArgumentError);
    expect(() => new Barrier(2).removeParticipants(0)).toThrow(InvalidArgumentError);
    const barrier = new Barrier(2);
    const waiting = barrier.signalAndWaitAsync({ timeout: 5_000 });
    // One of the two arrived: only one has not, so removing two is not a bad count but a bad moment.
    expect(() => barrier.removeParticipants(2)).toThrow(InvalidOperationError);
    barrier.removeParticipants(1);
    expect(await waiting).toBe(true);
    expect(barrier.participantCount).toBe(1);
  });

  // dotnet/runtime BarrierTests: RunBarrierTest7a, RunBarrierTest10_PostPhaseException.
  test('an action that throws fails the phase for every participant, in every runspace, with BarrierPostPhaseError; the next phase runs', async () => {
    const barrier = new Barrier(3, (b) => {
      if (b.currentPhaseNumber === 0) throw Object.assign(new RangeError('phase 0 went wrong'), { code: 'E_PHASE' });
    });
    const participant = (ctx: RunspaceContext<{ barrier: Barrier }>) => {
      const outcomes: unknown[] = [];
      for (let phase = 0; phase < 2; phase++) {
        try {
          outcomes.push(ctx.using.barrier.signalAndWait());
        } catch (error) {
          const { name, code, phase: failed, cause } = error as { name: string; code: string; phase: number; cause: Error & { code?: string } };
          outcomes.push({ name, code, failed, cause: { name: cause.name, message: cause.message, code: cause.code, hasStack: cause.stack!.includes('phase 0 went wrong') } });
        }
      }
      return outcomes;
    };
    const inRunspaces = [0, 1].map(() => pool.invoke(participant, { using: { barrier } }));
    const here: unknown[] = [];
    for (let phase = 0; phase < 2; phase++) here.push(await barrier.signalAndWaitAsync().catch((error: unknown) => error));
    const expected = [
      { name: 'BarrierPostPhaseError', code: 'ERR_BARRIER_POST_PHASE', failed: 0, cause: { name: 'RangeError', message: 'phase 0 went wrong', code: 'E_PHASE', hasStack: true } },
      true,
    ];
    expect(await Promise.all(inRunspaces)).toEqual([expected, expected]);
    expect(here[0]).toBeInstanceOf(BarrierPostPhaseError);
    expect((here[0] as BarrierPostPhaseError).cause).toMatchObject({ message: 'phase 0 went wrong' });
    expect(here[1]).toBe(true);
    expect(barrier.currentPhaseNumber).toBe(2);
  });

  // dotnet/runtime BarrierTests: RunBarrierTest9_PostPhaseException (the action calls AddParticipant).
  test('the action cannot add, remove or signal participants of its own barrier', async () => {
    for (const change of ['add', 'remove', 'signal'] as const) {
      const barrier = new Barrier(1, (b) => {
        if (change === 'add') b.addParticipants(1);
        else if (change === 'remove') b.removeParticipants(1);
        else b.signalAndWait();
      });
      const error = await barrier.signalAndWaitAsync().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BarrierPostPhaseError);
      expect((error as BarrierPostPhaseError).cause).toBeInstanceOf(InvalidOperationError);
      // Nothing changed: the next phase still has its one participant.
      expect(barrier.participantCount).toBe(1);
      expect(barrier.currentPhaseNumber).toBe(1);
    }
  });

  test('can be named: runspaces that open it by name meet the main thread at every phase', async () => {
    const { barrier, createdNew } = Barrier.open('test-barrier-named', 3);
    expect(createdNew).toBe(true);
    expect(barrier.name).toBe('test-barrier-named');
    const phases = 50;
    const participant = async (ctx: RunspaceContext, rounds: number) => {
      const { Barrier: NamedBarrier } = await import('runspaces');
      const named = NamedBarrier.openExisting('test-barrier-named');
      for (let phase = 0; phase < rounds; phase++) named.signalAndWait();
      return named.currentPhaseNumber;
    };
    const inRunspaces = [0, 1].map(() => pool.invoke(participant, { args: [phases] }));
    for (let phase = 0; phase < phases; phase++) await barrier.signalAndWaitAsync();
    expect(await Promise.all(inRunspaces)).toEqual([phases, phases]);
    // A named barrier crossing to a runspace keeps its name.
    expect(await pool.invoke((ctx) => (ctx.using.barrier as Barrier).name, { using: { barrier } })).toBe('test-barrier-named');
    expect(Barrier.tryOpenExisting('test-barrier-missing')).toBeUndefined();
    expect(() => Barrier.openExisting('test-barrier-missing')).toThrow(WaitHandleNotFoundError);
  });

  test('a blocking signalAndWait on the main thread is refused', () => {
    expect(() => new Barrier(1).signalAndWait()).toThrow(/signalAndWaitAsync/);
  });
});
