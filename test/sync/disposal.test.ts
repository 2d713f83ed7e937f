// dispose() / Symbol.dispose on every primitive, and names freed when the
// last object viewing them goes (dotnet/runtime: the *_Disposed and
// OpenExisting-after-close cases of the System.Threading tests).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AutoResetEvent,
  Barrier,
  CountdownEvent,
  ManualResetEvent,
  Mutex,
  ObjectDisposedError,
  OperationCancelledError,
  ReaderWriterLock,
  RunspacePool,
  Semaphore,
  type RunspaceContext,
} from 'runspaces';

let pool: RunspacePool;
beforeAll(async () => {
  pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 1 });
});
afterAll(() => pool.close());

describe('dispose', () => {
  test('every primitive refuses use after dispose with ObjectDisposedError; disposing twice is harmless', async () => {
    const disposed = <T extends { dispose(): void; [Symbol.dispose](): void }>(object: T): T => {
      object.dispose();
      object[Symbol.dispose]();
      return object;
    };
    const mutex = disposed(new Mutex());
    await expect(mutex.acquire()).rejects.toBeInstanceOf(ObjectDisposedError);
    expect(() => mutex.releaseMutex()).toThrow(ObjectDisposedError);
    expect(() => mutex.isLocked()).toThrow(ObjectDisposedError);
    const semaphore = disposed(new Semaphore(1, 1));
    await expect(semaphore.acquire()).rejects.toBeInstanceOf(ObjectDisposedError);
    expect(() => semaphore.release()).toThrow(ObjectDisposedError);
    for (const event of [disposed(new ManualResetEvent(true)), disposed(new AutoResetEvent(true)), disposed(new CountdownEvent(0))]) {
      await expect(event.waitAsync()).rejects.toBeInstanceOf(ObjectDisposedError);
    }
    expect(() => disposed(new ManualResetEvent(false)).set()).toThrow(ObjectDisposedError);
    expect(() => disposed(new CountdownEvent(1)).signal()).toThrow(ObjectDisposedError);
    await expect(disposed(new Barrier(1)).signalAndWaitAsync()).rejects.toBeInstanceOf(ObjectDisposedError);
    expect(() => disposed(new Barrier(1)).addParticipants(1)).toThrow(ObjectDisposedError);
    await expect(disposed(new ReaderWriterLock()).acquireRead()).rejects.toBeInstanceOf(ObjectDisposedError);
    await expect(disposed(new ReaderWriterLock()).withWriteLock(() => 1)).rejects.toBeInstanceOf(ObjectDisposedError);
    // A disposed primitive cannot cross to a runspace either.
    await expect(pool.invoke((ctx) => ctx.using.m, { using: { m: disposed(new Mutex()) } })).rejects.toBeInstanceOf(ObjectDisposedError);
    expect(new ObjectDisposedError('Mutex')).toMatchObject({ code: 'ERR_OBJECT_DISPOSED', objectName: 'Mutex' });
  });

  test('waits pending on a disposed object reject, holding nothing', async () => {
    const mutex = new Mutex();
    await mutex.acquire();
    const semaphore = new Semaphore(0, 1);
    const event = new ManualResetEvent(false);
    const lock = new ReaderWriterLock();
    await lock.acquireWrite();
    const pending = [mutex.acquire(), semaphore.acquire(), event.waitAsync(), lock.acquireRead()];
    for (const object of [mutex, semaphore, event, lock]) object.dispose();
    for (const wait of pending) {
      const error = await wait.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OperationCancelledError);
      expect((error as OperationCancelledError).reason).toBeInstanceOf(ObjectDisposedError);
    }
  });
});

describe('names are freed when the last object viewing them goes', () => {
  test('2,000 names opened and disposed one after another: the 1,024-name table never fills', () => {
    for (let i = 0; i < 2_000; i++) {
      const { mutex, createdNew } = Mutex.open(`disposal-many-${i}`);
      expect(createdNew).toBe(true);
      mutex.dispose();
    }
    expect(Mutex.tryOpenExisting('disposal-many-1999')).toBeUndefined();
  });

  test('a name lives while any object views it, in any thread; the last dispose frees it', async () => {
    const first = Semaphore.open('disposal-shared', 0, 5).semaphore;
    const second = Semaphore.openExisting('disposal-shared');
    await pool.invoke((ctx: RunspaceContext<{ s: Semaphore }>) => {
      ctx.session.set('kept', ctx.using.s);
    }, { using: { s: first } });
    first.dispose();
    second.release(2);
    second.dispose();
    // The runspace's copy still holds the name: its state is intact.
    const again = Semaphore.tryOpenExisting('disposal-shared');
    expect(again?.currentCount).toBe(2);
    again!.dispose();
    await pool.invoke((ctx) => (ctx.session.get('kept') as Semaphore).dispose());
    expect(Semaphore.tryOpenExisting('disposal-shared')).toBeUndefined();
  });

  test('a freed name starts over clean, even as another kind', () => {
    const { semaphore } = Semaphore.open('disposal-reused', 0, 5);
    semaphore.release(3);
    semaphore.dispose();
    const { event, createdNew } = ManualResetEvent.open('disposal-reused', false);
    expect(createdNew).toBe(true);
    expect(event.isSet).toBe(false);
    event.dispose();
  });

  test('an object collected without dispose gives its name back', async () => {
    const freed = await pool.invoke(async () => {
      const { Mutex: RunspaceMutex } = await import('runspaces');
      // A worker takes no --expose-gc flag: turn it on here and fetch gc from a fresh context.
      (await import('node:v8')).setFlagsFromString('--expose-gc');
      const gc = (await import('node:vm')).runInNewContext('gc') as () => void;
      (() => {
        RunspaceMutex.open('disposal-collected');
      })();
      for (let attempt = 0; attempt < 50; attempt++) {
        gc();
        await new Promise((resolve) => setImmediate(resolve));
        const probe = RunspaceMutex.tryOpenExisting('disposal-collected');
        if (probe === undefined) return true;
        probe.dispose();
      }
      return false;
    });
    expect(freed).toBe(true);
  });
});
