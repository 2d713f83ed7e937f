import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  AbandonedMutexError,
  InvalidArgumentError,
  LockDirectoryError,
  Mutex,
  OperationCancelledError,
  RunspacePool,
  Semaphore,
} from 'runspaces';

const fixtures = new URL('../fixtures/', import.meta.url);
const exampleDir = new URL('../../examples/deployment-status/', import.meta.url);

let root: string;
let lockDir: string;
let pool: RunspacePool;
const savedEnv = { ...process.env };
let names = 0;
/** A name no earlier test used, so tests never see each other's lock records. */
const freshName = () => `Global\\test-${process.pid}-${++names}`;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'runspaces-global-'));
  lockDir = join(root, 'locks');
  // Runspaces copy the environment when they start: set it before the pool.
  process.env.RUNSPACES_LOCK_DIR = lockDir;
  pool = await RunspacePool.open({ minRunspaces: 2, maxRunspaces: 2 });
});
afterAll(async () => {
  await pool.close();
  process.env = savedEnv;
  rmSync(root, { recursive: true, force: true });
});

/** A child process of `fixture`, with a queue of the messages it sent. */
class Child {
  readonly process: ChildProcess;
  readonly #messages: Array<Record<string, unknown>> = [];
  readonly #waiting: Array<(message: Record<string, unknown>) => void> = [];
  readonly exited: Promise<NodeJS.Signals | number | null>;

  constructor(fixture: URL, args: string[], env: NodeJS.ProcessEnv = {}) {
    this.process = fork(fixture, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.process.on('message', (message) => {
      const waiter = this.#waiting.shift();
      if (waiter) waiter(message as Record<string, unknown>);
      else this.#messages.push(message as Record<string, unknown>);
    });
    this.exited = new Promise((resolve) => this.process.once('exit', (code, signal) => resolve(signal ?? code)));
  }

  next(): Promise<Record<string, unknown>> {
    const queued = this.#messages.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      this.#waiting.push(resolve);
      void this.exited.then((how) => reject(new Error(`child exited (${String(how)}) before answering`)));
    });
  }

  async expect(event: string): Promise<Record<string, unknown>> {
    const message = await this.next();
    expect(message.event).toBe(event);
    return message;
  }

  async ask(command: string, answer: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    this.process.send({ command, ...extra });
    return this.expect(answer);
  }

  kill(): Promise<unknown> {
    this.process.kill('SIGKILL');
    return this.exited;
  }
}

const children: Child[] = [];
const holder = (name: string): Child => {
  const child = new Child(new URL('global-mutex-child.js', fixtures), [name]);
  children.push(child);
  return child;
};
afterEach(async () => {
  await Promise.all(children.splice(0).map((child) => child.kill()));
});

describe('Global mutex: names and directories', () => {
  test('names that cannot be a lock file are refused with the argument named', () => {
    for (const bad of ['Global\\', 'Global\\a/b', 'Global\\a\\b', 'Global\\..', 'Global\\x:y', 'Global\\a\u0000b', `Global\\${'x'.repeat(81)}`]) {
      const error = (() => { try { Mutex.open(bad); } catch (e) { return e; } })();
      expect(error, bad).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).argument).toBe('name');
    }
    expect(() => Semaphore.open('Global\\counted', 1, 1)).toThrow(/only Mutex has Global/);
    expect(() => Mutex.open(freshName(), { fair: true })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', argument: 'fair' }));
  });

  test('lock files go to the lockDirectory option, else RUNSPACES_LOCK_DIR', async () => {
    const optionDir = join(root, 'by-option');
    const name = freshName();
    expect(Mutex.open(name, { lockDirectory: optionDir }).mutex.name).toBe(name);
    expect(existsSync(join(optionDir, `${name.slice(7)}.lock`))).toBe(true);
    const other = freshName();
    Mutex.open(other);
    expect(existsSync(join(lockDir, `${other.slice(7)}.lock`))).toBe(true);
    // Two directories are two mutexes: holding one does not hold the other.
    const here = Mutex.open(name, { lockDirectory: optionDir }).mutex;
    const there = Mutex.open(name).mutex;
    expect(await here.acquire({ timeout: 0 })).toBe(true);
    expect(await there.acquire({ timeout: 0 })).toBe(true);
    here.releaseMutex();
    there.releaseMutex();
  });

  test('the default directory is private to this user; a shared or planted one is refused', async () => {
    const fakeTmp = mkdtempSync(join(root, 'tmp-'));
    const defaultDir = join(fakeTmp, `runspaces-locks-${process.getuid!()}`);
    delete process.env.RUNSPACES_LOCK_DIR;
    process.env.TMPDIR = fakeTmp;
    try {
      mkdirSync(defaultDir);
      chmodSync(defaultDir, 0o777);
      expect(() => Mutex.open(freshName())).toThrow(expect.objectContaining({ code: 'ERR_LOCK_DIRECTORY', directory: defaultDir }));
      rmSync(defaultDir, { recursive: true });
      symlinkSync(root, defaultDir);
      expect(() => Mutex.open(freshName())).toThrow(LockDirectoryError);
      rmSync(defaultDir);
      const name = freshName();
      Mutex.open(name);
      expect(lstatSync(defaultDir).mode & 0o777).toBe(0o700);
      expect(lstatSync(join(defaultDir, `${name.slice(7)}.lock`)).mode & 0o077).toBe(0);
    } finally {
      process.env.RUNSPACES_LOCK_DIR = lockDir;
      if (savedEnv.TMPDIR === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedEnv.TMPDIR;
    }
  });

  test('names that differ only in lone surrogates are refused, not aliased to one file', () => {
    for (const bad of ['Global\\\uD800', 'Global\\x\uDBFFy', 'Global\\\uDC00']) {
      expect(() => Mutex.open(bad), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', argument: 'name' }));
    }
    expect(Mutex.open('Global\\caf\u00e9-\u{1F512}').mutex.name).toBe('Global\\caf\u00e9-\u{1F512}');
  });

  test('something other than a file planted under a lock name (a FIFO) is a LockDirectoryError, not a hang or ESPIPE', () => {
    mkdirSync(lockDir, { recursive: true });
    const fifo = join(lockDir, 'fifo-planted.lock');
    execFileSync('mkfifo', [fifo]);
    expect(() => Mutex.open('Global\\fifo-planted')).toThrow(expect.objectContaining({ code: 'ERR_LOCK_DIRECTORY', message: expect.stringMatching(/not a regular file/) }));
  });

  test('a configured directory anyone may write to is refused; one the library creates is group-shared whatever the umask', () => {
    const open = join(root, 'world-writable');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(() => Mutex.open(freshName(), { lockDirectory: open })).toThrow(expect.objectContaining({ code: 'ERR_LOCK_DIRECTORY', message: expect.stringMatching(/anyone may write/) }));
    const shared = join(root, 'group-shared');
    const script = `
      process.umask(0o077);
      const { Mutex } = await import('runspaces');
      Mutex.open('Global\\\\umask', { lockDirectory: ${JSON.stringify(shared)} });`;
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('../../', import.meta.url)) });
    expect(lstatSync(shared).mode & 0o7777).toBe(0o2770);
    expect(lstatSync(join(shared, 'umask.lock')).mode & 0o777).toBe(0o660);
  });

  test('a lock file that is a symlink is never followed', () => {
    const target = join(root, 'precious.txt');
    writeFileSync(target, 'keep me');
    mkdirSync(lockDir, { recursive: true });
    symlinkSync(target, join(lockDir, 'planted.lock'));
    expect(() => Mutex.open('Global\\planted')).toThrow(expect.objectContaining({ code: 'ERR_LOCK_DIRECTORY', message: expect.stringMatching(/symlink/) }));
    expect(readFileSync(target, 'utf8')).toBe('keep me');
  });
});

describe('Global mutex: across processes', () => {
  test('createdNew (and initiallyOwned) only for the first process to open it; openExisting finds what another process holds open', async () => {
    const name = freshName();
    expect(Mutex.open(name).createdNew).toBe(true);
    const child = holder(name);
    expect(await child.expect('opened')).toMatchObject({ createdNew: false });

    const owned = freshName();
    const first = Mutex.open(owned, { initiallyOwned: true });
    expect([first.createdNew, first.mutex.machineWide]).toEqual([true, true]);
    const contender = holder(owned);
    expect(await contender.expect('opened')).toMatchObject({ createdNew: false });
    expect(await contender.ask('try', 'tried')).toMatchObject({ acquired: false });
    first.mutex.releaseMutex();
    expect(await contender.ask('try', 'tried')).toMatchObject({ acquired: true });

    const elsewhere = freshName();
    expect(Mutex.tryOpenExisting(elsewhere)).toBeUndefined();
    expect(() => Mutex.openExisting(elsewhere)).toThrow(expect.objectContaining({ code: 'ERR_WAIT_HANDLE_NOT_FOUND' }));
    const other = holder(elsewhere);
    expect(await other.expect('opened')).toMatchObject({ createdNew: true });
    expect(Mutex.tryOpenExisting(elsewhere)?.name).toBe(elsewhere);
  });

  test('another process holding it: timed waits give up, cancelled waits leave nothing held, then the lock passes over', async () => {
    const name = freshName();
    const { mutex } = Mutex.open(name);
    const child = holder(name);
    await child.expect('opened');
    await child.ask('acquire', 'held');

    expect(await mutex.acquire({ timeout: 30 })).toBe(false);
    const controller = new AbortController();
    const cancelled = mutex.acquire({ signal: controller.signal });
    controller.abort();
    await expect(cancelled).rejects.toBeInstanceOf(OperationCancelledError);
    // A runspace of this process waits blocking, with a timeout, too.
    expect(await pool.invoke((ctx) => ctx.using.mutex.waitOne(30), { using: { mutex } })).toBe(false);

    const waiting = mutex.acquire();
    await child.ask('release', 'released');
    expect(await waiting).toBe(true);
    mutex.releaseMutex();

    // Reentrant for its owner; the other process gets in only after the last release.
    await mutex.withLock(async () => {
      expect(await mutex.acquire()).toBe(true);
      mutex.releaseMutex();
      expect(await child.ask('try', 'tried')).toMatchObject({ acquired: false });
    });
    expect(await child.ask('try', 'tried')).toMatchObject({ acquired: true });
  });

  test('a process whose wait timed out or was cancelled exits on its own: nothing is left waiting', async () => {
    const name = freshName();
    const { mutex } = Mutex.open(name);
    expect(await mutex.acquire()).toBe(true);
    const script = `
      import { Mutex } from 'runspaces';
      const { mutex } = Mutex.open(${JSON.stringify(name)});
      const timedOut = await mutex.acquire({ timeout: 20 });
      const controller = new AbortController();
      const cancelled = mutex.acquire({ signal: controller.signal }).catch((error) => error.code);
      setTimeout(() => controller.abort(), 20);
      console.log(JSON.stringify([timedOut, await cancelled]));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(fixtures), stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    expect(JSON.parse(output)).toEqual([false, 'ERR_CANCELLED']);
    mutex.releaseMutex();
  });

  test('a process killed while holding it: the next owner, here or in a runspace, is told it was abandoned', async () => {
    const name = freshName();
    const { mutex } = Mutex.open(name);
    for (const where of ['main thread', 'runspace']) {
      const child = holder(name);
      const { pid } = await child.expect('opened');
      await child.ask('acquire', 'held');
      const waiting = where === 'main thread'
        ? mutex.acquire().then(() => 'acquired', (error: unknown) => error)
        : pool.invoke((ctx) => {
          const m = ctx.using.mutex;
          try {
            m.waitOne();
            return 'acquired';
          } catch (error) {
            m.releaseMutex(); // owned even so
            return { name: (error as AbandonedMutexError).name, previousOwnerPid: (error as AbandonedMutexError).previousOwnerPid };
          }
        }, { using: { mutex } });
      await child.kill();
      const error = await waiting;
      expect(error, where).toMatchObject({ name: 'AbandonedMutexError', previousOwnerPid: pid });
      if (where === 'main thread') expect(error).toBeInstanceOf(AbandonedMutexError);
      if (where === 'main thread') mutex.releaseMutex();
      // Reported once: the release was clean.
      expect(await mutex.acquire({ timeout: 0 })).toBe(true);
      mutex.releaseMutex();
    }
  });

  test('a runspace that dies holding it frees the file lock with its thread; the next owner here is told', async () => {
    const name = freshName();
    const { mutex } = Mutex.open(name);
    const died = pool.invoke((ctx) => {
      ctx.using.mutex.waitOne();
      process.exit(7);
    }, { using: { mutex } }).catch((error: unknown) => error);
    expect(await died).toMatchObject({ code: 'ERR_RUNSPACE_BROKEN' });
    await expect(mutex.acquire()).rejects.toBeInstanceOf(AbandonedMutexError);
    mutex.releaseMutex();
    // The dead thread's descriptor, and its lock, are gone: another process gets in.
    const child = holder(name);
    await child.expect('opened');
    await child.ask('acquire', 'held');
  });
});

describe('Global mutex: a lock file that loses its path', () => {
  const lockFileOf = (name: string) => join(lockDir, `${name.slice(7)}.lock`);

  test.each(['deleted', 'replaced'] as const)('a lock file %s while another process holds it does not let a second owner in', async (how) => {
    const name = freshName();
    const child = holder(name);
    await child.expect('opened');
    await child.ask('acquire', 'held');
    const path = lockFileOf(name);
    if (how === 'deleted') rmSync(path);
    else {
      writeFileSync(`${path}.new`, '');
      renameSync(`${path}.new`, path);
    }
    const { mutex } = Mutex.open(name);
    // While the other process still holds it, through a file that lost its path: not ours.
    expect(await mutex.acquire({ timeout: 300 })).toBe(false);
    const inRunspace = await pool.invoke((ctx) => (ctx.using.m as Mutex).waitOne(100), { using: { m: mutex } });
    expect(inRunspace).toBe(false);
    await child.ask('release', 'released');
    expect(await mutex.acquire({ timeout: 5_000 })).toBe(true);
    mutex.releaseMutex();
  });

  test('a holder that died with its file deleted is reported as abandoned to the next owner', async () => {
    const name = freshName();
    const child = holder(name);
    await child.expect('opened');
    await child.ask('acquire', 'held');
    rmSync(lockFileOf(name));
    await child.kill();
    const { mutex } = Mutex.open(name);
    const outcome = await mutex.acquire({ timeout: 5_000 }).catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(AbandonedMutexError);
    mutex.releaseMutex();
    expect(await mutex.acquire({ timeout: 0 })).toBe(true);
    mutex.releaseMutex();
  });

  test('an abandonment is reported once: not again to this process after another process already recovered it', async () => {
    const name = freshName();
    const { mutex } = Mutex.open(name);
    await expect(pool.invoke((ctx) => {
      (ctx.using.m as Mutex).waitOne();
      process.exit(3);
    }, { using: { m: mutex } })).rejects.toThrow();
    const child = holder(name);
    await child.expect('opened');
    expect((await child.ask('acquire-once', 'acquired-once')).abandoned).toBe(true);
    expect(await mutex.acquire({ timeout: 5_000 })).toBe(true);
    mutex.releaseMutex();
  });
});

describe('The deployment-status scenario', () => {
  const statusFile = () => join(root, `status-${++names}.json`);

  test('3 processes × 2 runspaces × 25 updates: the file holds exactly every update', async () => {
    const file = statusFile();
    const updaters = ['a', 'b', 'c'].map((label) =>
      new Child(new URL('updater.js', exampleDir), [label, '2', '25'], { DEPLOYMENT_STATUS_FILE: file }));
    const reports = await Promise.all(updaters.map((child) => child.next()));
    await Promise.all(updaters.map((child) => child.exited));
    expect(reports.map((report) => report.updates)).toEqual([50, 50, 50]);

    const status = JSON.parse(readFileSync(file, 'utf8'));
    const expected = ['a', 'b', 'c'].flatMap((label) => [0, 1].flatMap((runspace) =>
      Array.from({ length: 25 }, (_, n) => `${label}.${runspace}.${n}`)));
    expect(Object.keys(status.steps).sort()).toEqual(expected.sort());
    expect(status.revision).toBe(150);
    expect(status.recoveries).toBe(0);
  });

  test('a process killed mid-update: the next writer recovers, the file is whole, only the killed update is missing', async () => {
    const file = statusFile();
    process.env.DEPLOYMENT_STATUS_FILE = file;
    try {
      const child = new Child(new URL('global-mutex-child.js', fixtures), ['Global\\deployment-status'], { DEPLOYMENT_STATUS_FILE: file });
      children.push(child);
      await child.expect('opened');
      await child.ask('hold-update', 'holding', { count: 5 });
      await child.kill();

      const { updateDeploymentStatus, getDeploymentStatus } = await import('../../examples/deployment-status/deployment-status.js');
      const { recovered, status } = await updateDeploymentStatus({ after: 'done' });
      expect(recovered).toBe(true);
      expect(status.revision).toBe(6);
      expect(Object.keys(status.steps).sort()).toEqual(['after', 'killed.0', 'killed.1', 'killed.2', 'killed.3', 'killed.4']);
      expect(await getDeploymentStatus()).toEqual(JSON.parse(readFileSync(file, 'utf8')));
      expect(status.recoveries).toBe(1);
    } finally {
      delete process.env.DEPLOYMENT_STATUS_FILE;
    }
  });
});
