/**
 * Every error this library throws on purpose. Each class has a stable `code`
 * (safe to switch on), a message that says what to do, and the data needed to
 * act on it. This module imports nothing so every layer may use it.
 *
 * @module
 */

/**
 * A value as an error message shows it, safely: a caller's value may have a
 * `toString` or `Symbol.toPrimitive` that throws (a Proxy's traps), and an
 * error message must never throw while it is being built.
 */
export function shown(value: unknown): string {
  try {
    if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
    return String(value);
  } catch {
    return `a ${typeof value} that cannot be shown`;
  }
}

/** An error's message as an error message quotes it, safely (a caller's error may have a throwing getter). */
export function messageOf(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return 'an error that cannot be described';
  }
}

/** Base class of all errors raised by runspaces itself. */
export class RunspacesError extends Error {
  /** Stable, machine-readable identifier of the failure. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * A runspace died (uncaught exception, `process.exit`, out of memory, or
 * `terminate`) while work depended on it. The pool replaces the runspace; the
 * work it held is lost and reported with this error.
 */
export class RunspaceBrokenError extends RunspacesError {
  constructor(
    readonly runspaceId: number,
    readonly exitCode: number | null,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      'ERR_RUNSPACE_BROKEN',
      `Runspace ${runspaceId} stopped (${reason}${exitCode === null ? '' : `, exit code ${exitCode}`}) while running this work; the pool replaced it, but the work it held did not complete.`,
      options,
    );
  }
}

/** A runspace could not be opened: its modules or startup scripts failed. */
export class RunspaceOpenError extends RunspacesError {
  constructor(readonly runspaceId: number, message: string, options?: { cause?: unknown }) {
    super('ERR_RUNSPACE_OPEN', `Runspace ${runspaceId} failed to open: ${message}`, options);
  }
}

/** Work was submitted to, or was still queued in, a pool that is closing or closed. */
export class PoolClosedError extends RunspacesError {
  constructor(message = 'The runspace pool is closed; open a new pool to run more work.') {
    super('ERR_POOL_CLOSED', message);
  }
}

/**
 * A call was refused because `maxQueue` calls already wait for a runspace
 * (piscina's queue-full error). Wait for the pool's `drain` event, or for
 * calls to finish, and submit again.
 */
export class PoolQueueFullError extends RunspacesError {
  constructor(readonly maxQueue: number) {
    super('ERR_POOL_QUEUE_FULL', `${maxQueue} call${maxQueue === 1 ? '' : 's'} already wait for a runspace (maxQueue); wait for the pool's 'drain' event and submit again.`);
  }
}

/** The pool is in a state that does not allow the operation (for example, not yet opened). */
export class InvalidPoolStateError extends RunspacesError {
  constructor(readonly state: string, readonly expected: string, operation: string) {
    super('ERR_POOL_STATE', `Cannot ${operation} while the pool is ${state}; it must be ${expected}.`);
  }
}

/** An option or argument has an invalid value. Nothing was started. */
export class InvalidArgumentError extends RunspacesError {
  constructor(readonly argument: string, message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_ARGUMENT', `Invalid ${argument}: ${message}`, options);
  }
}

/**
 * A value passed to a runspace (an argument, a `using` value, a session
 * variable) cannot be copied across threads by the structured clone algorithm.
 */
export class UncloneableValueError extends RunspacesError {
  constructor(readonly path: string, detail: string, options?: { cause?: unknown }) {
    super(
      'ERR_UNCLONEABLE_VALUE',
      `${path} cannot be copied to a runspace: ${detail}. Pass plain data (objects, arrays, primitives, Map, Set, Date, typed arrays).`,
      options,
    );
  }
}

/**
 * A function was passed as a `using` value. As PowerShell refuses script blocks
 * in `$using:`, functions never cross as values: pass data, and define the
 * function inside the script block or in a module.
 */
export class UsingFunctionError extends RunspacesError {
  constructor(readonly path: string) {
    super(
      'ERR_USING_FUNCTION',
      `${path} is a function; functions cannot be passed as using values (closures do not cross runspaces). Move the function into the script block, or export it from a module and import it there.`,
    );
  }
}

/** A function cannot be shipped to a runspace as a script block. */
export class ScriptBlockError extends RunspacesError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SCRIPT_BLOCK', message, options);
  }
}

/**
 * A script block uses names it neither declares nor receives: variables or
 * functions of the code around it. A script block runs in another thread
 * from its source alone, so nothing of its closure comes along (as in
 * PowerShell, where `$using:` is the way in). Nothing was sent or run.
 */
export class ScriptBlockClosureError extends RunspacesError {
  constructor(
    /** The names the script block uses from outside itself. */
    readonly identifiers: readonly string[],
    /** `file:line:column` where the script block was written, when known. */
    readonly location: string | undefined,
    detail: string,
  ) {
    super('ERR_SCRIPT_BLOCK_CLOSURE', detail);
  }
}

/** A script block used a relative `import()` whose base file is unknown or wrong. */
export class RelativeImportError extends RunspacesError {
  constructor(readonly specifier: string, message: string, options?: { cause?: unknown }) {
    super('ERR_RELATIVE_IMPORT', message, options);
  }
}

/** `invoke({ module, export })` named something that is not an exported function. */
export class ModuleExportError extends RunspacesError {
  constructor(readonly module: string, readonly exportName: string, message: string, options?: { cause?: unknown }) {
    super('ERR_MODULE_EXPORT', message, options);
  }
}

/**
 * The work was cancelled through its `signal`. When the function ignored the
 * cancellation past the grace period, its runspace was recycled
 * (`runspaceRecycled`), and its session state was lost.
 */
export class OperationCancelledError extends RunspacesError {
  constructor(readonly reason: unknown, readonly runspaceRecycled: boolean) {
    super(
      'ERR_CANCELLED',
      runspaceRecycled
        ? 'The operation was cancelled; it ignored its signal, so its runspace was recycled.'
        : 'The operation was cancelled.',
      { cause: reason },
    );
  }
}

/**
 * The work exceeded its `timeout`. When the function ignored the cancellation
 * past the grace period, its runspace was recycled (`runspaceRecycled`).
 */
export class TimeoutError extends RunspacesError {
  constructor(readonly timeout: number, readonly runspaceRecycled: boolean) {
    super(
      'ERR_TIMEOUT',
      runspaceRecycled
        ? `The operation timed out after ${timeout} ms; it ignored its signal, so its runspace was recycled.`
        : `The operation timed out after ${timeout} ms.`,
    );
  }
}

/** A `Runspace` handle was used after `release()`. */
export class RunspaceReleasedError extends RunspacesError {
  constructor(readonly runspaceId: number) {
    super(
      'ERR_RUNSPACE_RELEASED',
      `Runspace ${runspaceId} was released back to its pool; acquire a runspace again to address one.`,
    );
  }
}

// ---- synchronization -------------------------------------------------------

/**
 * A lock was released by a thread (or async flow) that does not own it, as
 * .NET's SynchronizationLockException: "Object synchronization method was
 * called from an unsynchronized block of code".
 */
export class SynchronizationLockError extends RunspacesError {
  constructor(message = 'This lock was released by code that does not hold it. Only the owner may release it, as many times as it acquired it.') {
    super('ERR_SYNC_LOCK', message);
  }
}

/**
 * The previous owner of the mutex died while holding it. The caller now owns
 * the mutex (it must release it), but what the mutex protected may be
 * half-updated: check it before trusting it.
 */
export class AbandonedMutexError extends RunspacesError {
  /**
   * @param previousOwnerPid For a machine-wide (`Global\`) mutex, the process
   *   that held it when it died, when known.
   * @param mutexIndex From `WaitHandle.waitAny/waitAll`: the position of the
   *   abandoned mutex in the handles waited on (.NET's `MutexIndex`).
   */
  constructor(readonly mutex: unknown, readonly previousOwnerPid?: number, readonly mutexIndex?: number) {
    super(
      'ERR_ABANDONED_MUTEX',
      `The mutex was abandoned: its previous owner${previousOwnerPid === undefined ? '' : ` (process ${previousOwnerPid})`} ended without releasing it. You now own it; verify the state it protects, then release it.`,
    );
  }
}

/**
 * A `Barrier`'s post-phase action threw. Every participant of that phase
 * gets this error from its `signalAndWait` (as .NET's
 * `BarrierPostPhaseException`), and the phase completed all the same.
 * `cause` is what the action threw: the error itself in the thread that ran
 * the action, a copy (name, message, stack, `code`) in the others.
 */
export class BarrierPostPhaseError extends RunspacesError {
  constructor(readonly phase: number, options: { cause: unknown }) {
    super('ERR_BARRIER_POST_PHASE', `The post-phase action of barrier phase ${phase} threw: ${messageOf(options.cause)}`, options);
  }
}

/** `release()` would raise a semaphore's count past its maximum. Nothing changed. */
export class SemaphoreFullError extends RunspacesError {
  constructor(readonly maximumCount: number, readonly releaseCount: number) {
    super('ERR_SEMAPHORE_FULL', `Releasing ${releaseCount} would raise the semaphore past its maximum count of ${maximumCount}; nothing was released.`);
  }
}

/** `openExisting` found no synchronization object of that name. */
export class WaitHandleNotFoundError extends RunspacesError {
  constructor(readonly handleName: string) {
    super('ERR_WAIT_HANDLE_NOT_FOUND', `No synchronization object named '${handleName}' exists in this process; create it with open().`);
  }
}

/** A name is already used by another kind of synchronization object. */
export class WaitHandleKindError extends RunspacesError {
  constructor(readonly handleName: string, readonly existingKind: string, readonly requestedKind: string) {
    super('ERR_WAIT_HANDLE_KIND', `The name '${handleName}' already belongs to a ${existingKind}; it cannot be opened as a ${requestedKind}.`);
  }
}

/**
 * The synchronization object was disposed (`dispose()`, or `using`): it
 * cannot be used any more (.NET's `ObjectDisposedException`). Open the name
 * again, or make a new one.
 */
export class ObjectDisposedError extends RunspacesError {
  constructor(readonly objectName: string) {
    super('ERR_OBJECT_DISPOSED', `This ${objectName} was disposed; it cannot be used any more.`);
  }
}

/** A blocking wait was called on the main thread, where it would freeze the event loop. */
export class BlockingWaitError extends RunspacesError {
  constructor(method: string, alternative: string) {
    super(
      'ERR_BLOCKING_WAIT',
      `${method} blocks its thread, and on the main thread that would freeze the event loop. Use ${alternative} there; ${method} is for runspaces.`,
    );
  }
}

/** The process-wide table of named synchronization objects is full. */
export class SyncArenaFullError extends RunspacesError {
  constructor(readonly capacity: number) {
    super('ERR_SYNC_ARENA_FULL', `All ${capacity} named synchronization objects of this process are in use; use unnamed objects passed as values instead.`);
  }
}

/**
 * The directory for machine-wide (`Global\`) lock files cannot be used: it is
 * not a directory, cannot be created, or (the default directory) is not
 * private to this user. Nothing was locked.
 */
export class LockDirectoryError extends RunspacesError {
  constructor(readonly directory: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_LOCK_DIRECTORY', `The lock directory '${directory}' cannot be used: ${reason}`, options);
  }
}

/** The operation is not valid in the object's current state (.NET's InvalidOperationException). */
export class InvalidOperationError extends RunspacesError {
  constructor(message: string) {
    super('ERR_INVALID_OPERATION', message);
  }
}

// ---- parallel loops and jobs ------------------------------------------------

/**
 * One item of a parallel loop failed. `index` is the item's position in the
 * input; `cause` is what it threw (or the `RunspaceBrokenError` of a runspace
 * that died while holding it). Under `errorAction: 'continue'` these are
 * error records and the loop goes on; under `'stop'` the first one ends it.
 */
export class ParallelItemError extends RunspacesError {
  constructor(readonly index: number, options: { cause: unknown }) {
    const cause = options.cause;
    super(
      'ERR_PARALLEL_ITEM',
      `Item ${index} of the parallel loop failed: ${cause instanceof Error ? cause.message : shown(cause)}`,
      options,
    );
  }
}

/**
 * A parallel loop ran every item, and some failed: thrown at the end of the
 * iteration (after every output was delivered) unless the loop was told
 * what to do with failures (`errorAction: 'continue'` keeps them in
 * `loop.errors` only; `'stop'` ends at the first). A loop never fails
 * silently.
 */
export class ParallelLoopError extends RunspacesError {
  constructor(
    /** Each failed item's error, in the order they failed; `error.index` is the item's position. */
    readonly errors: readonly ParallelItemError[],
    /** Items that finished, failed or not. */
    readonly completed: number,
  ) {
    const first = errors[0];
    super(
      'ERR_PARALLEL_LOOP',
      `${errors.length} of ${completed} items of the parallel loop failed; the first, item ${first?.index}: ${first?.cause instanceof Error ? first.cause.message : shown(first?.cause)}. ` +
        `The failures are in error.errors (and loop.errors). Pass errorAction: 'continue' to keep going without this error, or 'stop' to end at the first failure.`,
    );
  }
}

// ---- beyond one machine --------------------------------------------------------

/**
 * The cluster cannot be reached or used: Redis is down or unreachable past
 * the wait allowed, or the optional packages the cluster needs (`bullmq`,
 * `ioredis`) are not installed. The message says which.
 */
export class ClusterUnavailableError extends RunspacesError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CLUSTER_UNAVAILABLE', message, options);
  }
}

/**
 * The node running part of a cluster loop or call died, and the work was
 * not run again: it had already been retried as far as the delivery rule
 * allows (see docs/scale-out.md).
 */
export class ClusterNodeLostError extends RunspacesError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CLUSTER_NODE_LOST', message, options);
  }
}

/**
 * A value cannot cross to another machine: a synchronization primitive (it
 * lives in this process's memory), an object with runspace affinity (it
 * lives in one runspace), or a function. `path` names where it was found.
 */
export class ClusterValueError extends RunspacesError {
  constructor(readonly path: string, what: string) {
    super('ERR_CLUSTER_VALUE', `${path} is ${what}, which cannot cross to another machine: send plain data (a name, an id, the data itself) instead.`);
  }
}

// ---- class affinity -----------------------------------------------------------

/**
 * A class cannot take part in runspace affinity as written: it is anonymous,
 * not defined at the top level of a module a runspace can import, an
 * undecorated subclass of an affinity class, or a class handle was used to
 * construct an instance in a runspace that never loaded the class.
 */
export class AffinityClassError extends RunspacesError {
  constructor(readonly className: string, message: string, options?: { cause?: unknown }) {
    super('ERR_AFFINITY_CLASS', message, options);
  }
}

/**
 * A field or accessor of an object that lives in another runspace was read or
 * written synchronously through its proxy. Only methods cross as calls; read
 * and write fields with `getRemoteProperty` / `setRemoteProperty`, which run
 * at the object's home and return promises.
 */
export class RemotePropertyError extends RunspacesError {
  constructor(readonly className: string, readonly property: string, readonly homeRunspaceId: number, write: boolean) {
    super(
      'ERR_REMOTE_PROPERTY',
      write
        ? `Cannot set '${property}' on a proxy of ${className}: the object lives in runspace ${homeRunspaceId}. Use await setRemoteProperty(proxy, '${property}', value), or a method that sets it.`
        : `Cannot read '${property}' of a proxy of ${className} synchronously: the object lives in runspace ${homeRunspaceId}. Use await getRemoteProperty(proxy, '${property}'), or a method that returns it.`,
    );
  }
}

/** A proxy was used after `releaseRemote()`: it no longer holds its object at home. */
export class ProxyReleasedError extends RunspacesError {
  constructor(readonly className: string, readonly homeRunspaceId: number) {
    super(
      'ERR_PROXY_RELEASED',
      `This proxy of ${className} (home: runspace ${homeRunspaceId}) was released; it can no longer call its object. Keep the proxy until you are done with it, or pass the object again.`,
    );
  }
}
