/**
 * The options and callback types of `Mutex`, apart from the lock itself.
 *
 * @module
 */

/** Options of `Mutex.acquire`. */
export interface MutexAcquireOptions {
  /** Milliseconds to wait; then `acquire` resolves false. Default: no limit. */
  readonly timeout?: number;
  /** Stops waiting: `acquire` rejects with `OperationCancelledError`, holding nothing. */
  readonly signal?: AbortSignal;
}

/** Options of a new mutex. */
export interface MutexOptions {
  /**
   * Hand ownership to the longest waiter instead of letting newcomers barge
   * in. No waiter is ever overtaken, at a large cost in contended throughput
   * (see docs/benchmarks.md). Default false.
   */
  readonly fair?: boolean;
}

/** Options of `Mutex.open`. */
export interface MutexOpenOptions extends MutexOptions {
  /** Own the mutex on return, when this call created it (`createdNew`). */
  readonly initiallyOwned?: boolean;
  /**
   * For `Global\` names: the directory of the lock files. Every process
   * sharing the mutex must use the same one. Default: the `RUNSPACES_LOCK_DIR`
   * environment variable, else a directory private to this user under the OS
   * temp dir.
   */
  readonly lockDirectory?: string;
}

/** Options of `mutex.withLock`: a timeout or signal, and what to do when the mutex was abandoned. */
export interface WithLockOptions extends MutexAcquireOptions {
  /**
   * When the previous owner died holding the mutex: `'throw'` (default)
   * releases it and throws `AbandonedMutexError`; `'continue'` runs the
   * callback anyway, with `abandoned: true`.
   */
  readonly onAbandoned?: 'throw' | 'continue';
}

/** What `withLock` tells its callback. */
export interface LockInfo {
  /** True when the previous owner died holding the mutex: check what it protects. */
  readonly abandoned: boolean;
}
