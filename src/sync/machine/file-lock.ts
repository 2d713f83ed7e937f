/**
 * The file half of a machine-wide mutex: an OS lock on one byte of a lock
 * file, which the kernel drops when the holding process dies.
 *
 * ## One descriptor per thread
 * Node closes the files a worker opened when the worker ends, so no
 * descriptor can outlive its thread. Each thread therefore opens the file for
 * itself, and that is what we want: a runspace that dies holding the lock
 * loses it with its descriptor. The locks are per open file (Linux
 * open-file-description locks, BSD `flock`, Windows `LockFileEx`), so two
 * threads of one process exclude each other too; the in-process mutex in
 * front makes sure only one of them ever tries.
 *
 * ## Byte ranges
 * - byte 0: the mutex itself, held exclusively by the owner.
 * - byte 1: held shared by every open descriptor, so an opener that can take
 *   it exclusively knows nobody else has the mutex open (`createdNew`).
 *   macOS's `flock` locks whole files, where the two would be one lock: there
 *   `createdNew` means "this process created the lock file" instead.
 *
 * ## The owner record
 * While the lock is held, the first 8 bytes of the file hold the owner's
 * process id; a clean release zeroes them before unlocking. An acquirer that
 * finds a process id there knows its predecessor died holding the lock: the
 * mutex was abandoned.
 *
 * ## A lock file deleted or replaced while held
 * A file lock belongs to an inode, not to a path. If a /tmp cleaner or a
 * deploy script removes (or renames over) the lock file while a process
 * holds it, the next process would create a fresh file and lock it at once:
 * two owners. So the lock file has a second name, `<file>.held`, for the
 * same inode. An acquirer that took the lock looks at that name: naming its
 * own inode, all is well; missing, it is made; naming another inode that is
 * still locked, the lock is held through a file that lost its main name,
 * and the acquirer lets go and keeps waiting; naming another inode that
 * nobody locks, the name is moved to the current file, and an owner record
 * found in the old one reports its holder's death as an abandonment. Before
 * each attempt a thread also checks that the path still names the inode it
 * has open, and reopens it if not, so no thread keeps locking a file that
 * lost its name. A cleaner that removes both names of a held lock file (all
 * of the directory, say) is not detected: keep the lock directory out of
 * reach of such tools (see the README).
 *
 * ## Waiting
 * A waiter polls with growing sleeps instead of blocking in the kernel. A
 * blocked lock call can be neither timed out nor cancelled, and it would hold
 * a libuv thread (and keep the process alive) until the holder let go.
 * Polling leaves nothing behind when a wait ends; its price is a wake-up
 * latency of up to one sleep (at most `MAX_SLEEP_MS`).
 *
 * @module
 */

import { closeSync, constants, existsSync, fchmodSync, fstatSync, linkSync, mkdirSync, openSync, readSync, statSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname } from 'node:path';
import { LockDirectoryError, OperationCancelledError } from '../../errors.js';
import { remaining } from '../../util/deadline.js';

interface NativeLocks {
  tryLock(fd: number, offset: number, length: number, options?: { shared?: boolean }): boolean;
  tryDowngradeLock(fd: number, offset: number, length: number): boolean;
  unlock(fd: number, offset: number, length: number): void;
}

let native: NativeLocks | undefined;

/** Loaded on first use, so processes that never open a `Global\` name never load the addon. */
function locks(): NativeLocks {
  return (native ??= createRequire(import.meta.url)('fs-native-extensions') as NativeLocks);
}

const MUTEX_BYTE = 0;
const OPEN_BYTE = 1;
const RECORD_BYTES = 8;
const RANGE_LOCKS = process.platform !== 'darwin';
/** Tries at the shared open-announcement while another opener's two-call exclusive probe is in the way. */
const ANNOUNCE_TRIES = 10_000;
const SLEEPS_MS = [0.02, 0.05, 0.1, 0.2, 0.5, 1, 2];
const MAX_SLEEP_MS = 4;

/** What a successful lock reports: 0 after a clean release, else the process id of the owner that died holding it. */
export type PreviousOwner = number;

const byPath = new Map<string, FileLock>();

export class FileLock {
  readonly #path: string;
  readonly #heldPath: string;
  readonly #privateFile: boolean;
  #fd: number;
  #inode: Stats;
  readonly #record = Buffer.alloc(RECORD_BYTES);
  readonly #clean = Buffer.alloc(RECORD_BYTES);
  readonly #mine = Buffer.alloc(RECORD_BYTES);
  #sleeper: Int32Array | undefined;
  /** True while this thread holds byte 0. */
  held = false;
  /** True when nobody else had the file open when this thread opened it. */
  readonly firstOpener: boolean;

  /** This thread's lock on the file at `path`, opened (and the file created) on first use. */
  static forPath(path: string, privateFile: boolean): FileLock {
    let lock = byPath.get(path);
    if (lock === undefined) {
      lock = new FileLock(path, privateFile);
      byPath.set(path, lock);
    }
    return lock;
  }

  private constructor(path: string, privateFile: boolean) {
    this.#path = path;
    this.#heldPath = `${path}.held`;
    this.#privateFile = privateFile;
    const { fd, created } = openLockFile(path, privateFile);
    this.#fd = fd;
    try {
      this.firstOpener = RANGE_LOCKS ? this.#announceOpen() : created;
      this.#inode = fstatSync(fd);
    } catch (error) {
      closeSync(this.#fd);
      throw error;
    }
    this.#mine.writeInt32LE(process.pid, 0);
  }

  /** Reopens the lock file when its path no longer names the inode this thread has open. */
  #followPath(): void {
    const current = statSync(this.#path, { throwIfNoEntry: false });
    if (current !== undefined && sameInode(current, this.#inode)) return;
    const { fd } = openLockFile(this.#path, this.#privateFile);
    closeSync(this.#fd);
    this.#fd = fd;
    this.#inode = fstatSync(fd);
    if (RANGE_LOCKS) this.#announceOpen();
  }

  /**
   * After taking the lock: is it also held through an inode that lost its
   * main name? 'held' when so; otherwise the owner record of a holder of such
   * an inode that died (0 when there was none), and the second name is moved
   * to the current file.
   */
  #ghost(): 'held' | PreviousOwner {
    // The usual answer, without opening anything: the second name is ours.
    const named = statSync(this.#heldPath, { throwIfNoEntry: false });
    if (named !== undefined && sameInode(named, this.#inode)) return 0;
    let previous = 0;
    if (named !== undefined) {
      let fd: number | undefined;
      try {
        fd = openSync(this.#heldPath, constants.O_RDWR | (constants.O_NOFOLLOW ?? 0));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
      if (fd !== undefined) {
        try {
          if (!locks().tryLock(fd, MUTEX_BYTE, 1)) return 'held';
          locks().unlock(fd, MUTEX_BYTE, 1);
          const read = readSync(fd, this.#record, 0, RECORD_BYTES, 0);
          previous = read === RECORD_BYTES ? this.#record.readInt32LE(0) : 0;
        } finally {
          closeSync(fd);
        }
      }
    }
    this.#nameSecondly();
    return previous;
  }

  #announceOpen(): boolean {
    const native = locks();
    if (native.tryLock(this.#fd, OPEN_BYTE, 1)) {
      native.tryDowngradeLock(this.#fd, OPEN_BYTE, 1);
      return true;
    }
    // Another opener's exclusive probe lasts two system calls: retry until it
    // is done. A prober stopped in between costs only an exact createdNew.
    for (let i = 0; i < ANNOUNCE_TRIES && !native.tryLock(this.#fd, OPEN_BYTE, 1, { shared: true }); i++);
    return false;
  }

  /** Takes the lock if it is free; false when another holds it. */
  try(): PreviousOwner | false {
    this.#followPath();
    if (!locks().tryLock(this.#fd, MUTEX_BYTE, 1)) return false;
    try {
      const ghost = this.#ghost();
      if (ghost === 'held') {
        locks().unlock(this.#fd, MUTEX_BYTE, 1);
        return false;
      }
      const read = readSync(this.#fd, this.#record, 0, RECORD_BYTES, 0);
      const previous = read === RECORD_BYTES ? this.#record.readInt32LE(0) : 0;
      writeSync(this.#fd, this.#mine, 0, RECORD_BYTES, 0);
      this.held = true;
      return previous !== 0 ? previous : ghost;
    } catch (error) {
      locks().unlock(this.#fd, MUTEX_BYTE, 1);
      throw error;
    }
  }

  /** Gives the lock file its second name, replacing a name of a file that lost its main one. */
  #nameSecondly(): void {
    try {
      linkSync(this.#path, this.#heldPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      unlinkSync(this.#heldPath);
      linkSync(this.#path, this.#heldPath);
    }
  }

  /** Blocks this thread, polling, until the lock is taken or the deadline passes (false). */
  lockBlocking(deadline: number): PreviousOwner | false {
    for (let attempt = 0; ; attempt++) {
      const taken = this.try();
      if (taken !== false) return taken;
      const left = remaining(deadline);
      if (left === 0) return false;
      this.#sleeper ??= new Int32Array(new SharedArrayBuffer(4));
      Atomics.wait(this.#sleeper, 0, 0, Math.min(sleepFor(attempt), left));
    }
  }

  /** Polls without blocking until the lock is taken, the deadline passes (false) or `signal` aborts (rejects). */
  async lockAsync(deadline: number, signal: AbortSignal | undefined): Promise<PreviousOwner | false> {
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw new OperationCancelledError(signal.reason, false);
      const taken = this.try();
      if (taken !== false) return taken;
      const left = remaining(deadline);
      if (left === 0) return false;
      await pause(Math.min(sleepFor(attempt), left), signal);
    }
  }

  /** Marks the release as clean, then lets go of the lock. */
  unlock(): void {
    this.held = false;
    try {
      writeSync(this.#fd, this.#clean, 0, RECORD_BYTES, 0);
    } finally {
      locks().unlock(this.#fd, MUTEX_BYTE, 1);
    }
  }
}

/**
 * True when some process (this one included) has the lock file at `path`
 * open: the machine-wide mutex exists. Probes without creating the file.
 */
export function isOpenAnywhere(path: string): boolean {
  if (byPath.has(path)) return true;
  if (!RANGE_LOCKS) return existsSync(path);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | (constants.O_NOFOLLOW ?? 0));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  try {
    // Closing this descriptor drops only its own locks (they are per open file).
    return !locks().tryLock(fd, OPEN_BYTE, 1);
  } finally {
    closeSync(fd);
  }
}

/** Opens (creating when needed, and its directory if a cleaner removed it) the lock file. */
function openLockFile(path: string, privateFile: boolean): { fd: number; created: boolean } {
  const opened = openOrCreate(path, privateFile);
  try {
    // A FIFO, a device or a socket planted under the name would fail later, untyped (ESPIPE, a hang).
    if (!fstatSync(opened.fd).isFile()) {
      throw new LockDirectoryError(dirname(path), `its lock file '${basename(path)}' is not a regular file (something else was put under its name)`);
    }
    // In a shared directory, every user of the group must be able to open it, whatever this process's umask.
    if (opened.created && !privateFile && process.platform !== 'win32') fchmodSync(opened.fd, 0o660);
  } catch (error) {
    closeSync(opened.fd);
    throw error;
  }
  return opened;
}

function openOrCreate(path: string, privateFile: boolean): { fd: number; created: boolean } {
  const flags = constants.O_RDWR | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
  const mode = privateFile ? 0o600 : 0o660;
  try {
    try {
      return { fd: openSync(path, flags | constants.O_EXCL, mode), created: true };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        mkdirSync(dirname(path), { recursive: true, mode: privateFile ? 0o700 : 0o770 });
        return { fd: openSync(path, flags | constants.O_EXCL, mode), created: true };
      }
      if (code !== 'EEXIST') throw error;
      return { fd: openSync(path, flags, mode), created: false };
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ELOOP' ? 'is a symlink, which is never followed' : `cannot be opened for writing (${code ?? String(error)})`;
    throw new LockDirectoryError(dirname(path), `its lock file '${basename(path)}' ${why}`, { cause: error });
  }
}

function sameInode(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev;
}



function sleepFor(attempt: number): number {
  return SLEEPS_MS[attempt] ?? MAX_SLEEP_MS;
}

/** Sleeps `ms` on the event loop; below a millisecond (what a timer can do) it yields one turn. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      signal?.removeEventListener('abort', done);
      clearTimeout(timer);
      clearImmediate(immediate);
      resolve();
    };
    const timer = ms >= 1 ? setTimeout(done, ms) : undefined;
    const immediate = ms < 1 ? setImmediate(done) : undefined;
    signal?.addEventListener('abort', done, { once: true });
  });
}
