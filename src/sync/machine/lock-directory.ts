/**
 * Where machine-wide (`Global\`) lock files live, and which names may become
 * file names.
 *
 * Every process sharing a `Global\` mutex must find the same file, so the
 * directory is, in order: the `lockDirectory` option, the `RUNSPACES_LOCK_DIR`
 * environment variable, or a directory private to this user under the OS
 * temp dir (`runspaces-locks-<uid>`).
 *
 * The default directory must be private: a directory planted in a shared
 * temp dir by another user would let that user hold or watch our locks. So it
 * is created 0700, and an existing one must be a real directory (no symlink)
 * owned by this user and writable by nobody else. A configured directory is
 * the user's choice (processes of several users may share one on purpose); it
 * is created if missing and must be a directory. Lock files are opened
 * without following symlinks either way.
 *
 * @module
 */

import { chmodSync, lstatSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, LockDirectoryError } from '../../errors.js';
import { MAX_NAME_LENGTH } from '../arena.js';

/** The environment variable naming the lock directory. */
export const LOCK_DIRECTORY_ENV = 'RUNSPACES_LOCK_DIR';

/** Longest name after `Global\`: file systems allow 255 bytes, and `.lock` and UTF-8 need room. */
const MAX_GLOBAL_NAME = 80;

/** Characters no portable file name may hold, and path separators. */
const UNSAFE_NAME = /[\\/:*?"<>|\u0000-\u001f\u007f]/;

export interface LockDirectory {
  readonly path: string;
  /** True for the per-user default; lock files in it are private (0600). */
  readonly private: boolean;
}

/** The part of a `Global\` name that becomes the lock file's name, validated. */
export function globalNamePart(name: string): string {
  const part = name.slice('Global\\'.length);
  if (part.length === 0 || part.length > MAX_GLOBAL_NAME) {
    throw new InvalidArgumentError('name', `expected 1 to ${MAX_GLOBAL_NAME} characters after Global\\, got ${part.length}`);
  }
  if (UNSAFE_NAME.test(part)) {
    throw new InvalidArgumentError('name', `'${name}' cannot name a lock file: no path separators, control characters or any of : * ? " < > | after Global\\`);
  }
  if (/^\.+$/.test(part)) throw new InvalidArgumentError('name', `'${name}' cannot name a lock file: a name of dots alone is a path`);
  // A lone surrogate has no file-name encoding: each would become U+FFFD, and two names one file.
  if (!part.isWellFormed()) throw new InvalidArgumentError('name', `'${name}' cannot name a lock file: it holds a lone surrogate (not well-formed Unicode)`);
  return part;
}

const checked = new Map<string, LockDirectory>();

/** The lock directory for `option` (or the environment, or the default), created and checked once per thread. */
export function lockDirectory(option?: string): LockDirectory {
  if (option !== undefined && (typeof option !== 'string' || option.length === 0)) {
    throw new InvalidArgumentError('lockDirectory', 'expected a non-empty path');
  }
  const configured = option ?? (process.env[LOCK_DIRECTORY_ENV] || undefined);
  const path = configured === undefined ? defaultDirectory() : resolve(configured);
  let found = checked.get(path);
  if (found === undefined) {
    found = configured === undefined ? preparePrivate(path) : prepareConfigured(path);
    checked.set(path, found);
  }
  return found;
}

function defaultDirectory(): string {
  const who = process.getuid?.() ?? userInfo().username.replace(/[^A-Za-z0-9_-]/g, '_');
  return join(tmpdir(), `runspaces-locks-${who}`);
}

function preparePrivate(path: string): LockDirectory {
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new LockDirectoryError(path, 'it could not be created', { cause: error });
  }
  const stats = lstatSync(path);
  if (!stats.isDirectory()) throw new LockDirectoryError(path, 'it is not a directory (a symlink or a file is refused here)');
  if (process.platform !== 'win32') {
    if (stats.uid !== process.getuid!()) {
      throw new LockDirectoryError(path, `it belongs to user ${stats.uid}, not to this user; remove it or set ${LOCK_DIRECTORY_ENV}`);
    }
    if ((stats.mode & 0o022) !== 0) {
      throw new LockDirectoryError(path, `others may write to it (mode ${(stats.mode & 0o777).toString(8)}); it must be private to this user`);
    }
  }
  return { path, private: true };
}

/**
 * A directory the user chose, possibly shared by the users of one group. It
 * is created group-writable whatever the umask (0770 with the setgid bit, so
 * lock files take the directory's group); lock files in it are made 0660
 * (see file-lock.ts). A directory anyone may write to is refused, as the
 * default one is: another user could plant or remove lock files in it.
 */
function prepareConfigured(path: string): LockDirectory {
  let created: string | undefined;
  try {
    created = mkdirSync(path, { recursive: true, mode: 0o770 });
    // mkdir's mode passes through the umask; a shared directory must be group-writable.
    if (created !== undefined) chmodSync(path, 0o2770);
  } catch (error) {
    throw new LockDirectoryError(path, 'it could not be created', { cause: error });
  }
  const stats = statSync(path);
  if (!stats.isDirectory()) throw new LockDirectoryError(path, 'it is not a directory');
  if (process.platform !== 'win32' && (stats.mode & 0o002) !== 0) {
    throw new LockDirectoryError(path, `anyone may write to it (mode ${(stats.mode & 0o7777).toString(8)}); share a lock directory through a group (chmod 2770, chgrp <group>)`);
  }
  return { path, private: false };
}

/** Where a `Global\` name lives: its key in this process's table of names, and its lock file. */
export interface MachineTarget {
  /** `Global\name` as the user wrote it (the prefix's case normalized). */
  readonly displayName: string;
  /** The in-process table key: the name plus its directory, since two directories are two mutexes. */
  readonly key: string;
  readonly lockFile: LockFile;
}

export interface LockFile {
  readonly path: string;
  readonly private: boolean;
}

export function isGlobalName(name: unknown): name is string {
  return typeof name === 'string' && /^global\\/i.test(name);
}

export function machineTarget(name: string, directoryOption?: string): MachineTarget {
  const part = globalNamePart(name);
  const directory = lockDirectory(directoryOption);
  const path = join(directory.path, `${part}.lock`);
  // The table holds names of up to MAX_NAME_LENGTH units; a longer path is
  // shortened to its name and a hash of its directory.
  const key = `Global\\${path}`.length <= MAX_NAME_LENGTH ? `Global\\${path}` : `Global\\${part}\\${fnv1a(directory.path)}`;
  return { displayName: `Global\\${part}`, key, lockFile: { path, private: directory.private } };
}

/** A short, stable hash of a directory path: it separates the names of two long directories. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(36);
}
