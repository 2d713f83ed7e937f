/**
 * runspaces: PowerShell's runspace model for Node.js worker threads.
 *
 * Everything a user can touch is exported here, and only here.
 *
 * @module
 */

export { RunspacePool } from './facade/runspace-pool.js';
export type { ParallelPool, ParallelPoolInvokeOptions, ParallelPoolLoop, ParallelPoolLoopOptions, ParallelPoolThreadJobOptions } from './facade/parallel-pool.js';
export type {
  AcquireOptions,
  PoolStateChange,
  RunspaceClosedInfo,
  RunspacePoolEvents,
  RunspacePoolState,
} from './facade/runspace-pool.js';
export { Runspace } from './pool/runspace.js';
export type { InvokeOptions, ModuleFunction, ScriptBlock } from './pool/invocation.js';
export type { InitialSessionState, RunspacePoolOptions, StartupScript } from './pool/options.js';
export type { LatencySummary, PoolStats } from './pool/pool-stats.js';
export type { JobContext, ParallelContext, RunspaceContext } from './runspace/context.js';
export { ParallelLoop } from './parallel/parallel-loop.js';
export { parallel, defaultPool } from './facade/default-pool.js';
export type { ErrorAction, ForEachParallelOptions, LoopFunction, ProgressRecord } from './parallel/options.js';
export type { LoopInput } from './parallel/input-source.js';
export { Job } from './parallel/job.js';
export type { JobData, JobEvents, JobFilter, JobState, JobStateChange, JobWaitOptions, ReceiveOptions, RemoveOptions } from './parallel/job.js';
export { ThreadJob } from './parallel/thread-job.js';
export type { JobScriptBlock, ThreadJobOptions } from './parallel/thread-job.js';
export { ParallelChildJob, ParallelJob } from './parallel/parallel-job.js';
export type { SessionState } from './runspace/session-state.js';
export { sessionState } from './runspace/session-state.js';
export { currentContext } from './runspace/current-context.js';
export type { ProgressInfo, StreamName, StreamRecord } from './protocol/stream-records.js';
export { NoRunspaceAffinity, RunspaceAffinity, noRunspaceAffinity, runspaceAffinity } from './affinity/decorators.js';
export type { AffinityDecorator, AffinityOptions, AnyClass } from './affinity/decorators.js';
export { getRemoteProperty, homeRunspaceId, isRemote, releaseRemote, setRemoteProperty } from './affinity/remote.js';
export type { Remote } from './affinity/remote.js';
export { affinityStats } from './affinity/link.js';
export type { AffinityStats } from './affinity/link.js';
export { Mutex } from './sync/mutex.js';
export type { LockInfo, MutexAcquireOptions, MutexOpenOptions, MutexOptions, WithLockOptions } from './sync/mutex.js';
export { Semaphore } from './sync/semaphore.js';
export type { SemaphoreAcquireOptions } from './sync/semaphore.js';
export { WaitHandle } from './sync/wait-handle.js';
export type { Waitable } from './sync/wait-handle.js';
export { AutoResetEvent } from './sync/auto-reset-event.js';
export { Barrier } from './sync/barrier.js';
export type { PostPhaseAction } from './sync/barrier.js';
export { CountdownEvent } from './sync/countdown-event.js';
export { ManualResetEvent } from './sync/manual-reset-event.js';
export { ReaderWriterLock } from './sync/reader-writer-lock.js';
export type { LockRecursionPolicy, ReaderWriterLockOptions } from './sync/reader-writer-lock.js';
export type { WaitOptions } from './sync/event-handle.js';
export {
  AbandonedMutexError,
  ClusterNodeLostError,
  ClusterUnavailableError,
  ClusterValueError,
  BarrierPostPhaseError,
  AffinityClassError,
  BlockingWaitError,
  ObjectDisposedError,
  InvalidArgumentError,
  InvalidOperationError,
  LockDirectoryError,
  InvalidPoolStateError,
  ModuleExportError,
  OperationCancelledError,
  ParallelItemError,
  ParallelLoopError,
  PoolClosedError,
  PoolQueueFullError,
  ProxyReleasedError,
  RelativeImportError,
  RemotePropertyError,
  RunspaceBrokenError,
  RunspaceOpenError,
  RunspaceReleasedError,
  RunspacesError,
  ScriptBlockError,
  ScriptBlockClosureError,
  SemaphoreFullError,
  SyncArenaFullError,
  SynchronizationLockError,
  TimeoutError,
  UncloneableValueError,
  UsingFunctionError,
  WaitHandleKindError,
  WaitHandleNotFoundError,
} from './errors.js';
export { ClusterLoop, ClusterMutex, ClusterPool, ClusterSemaphore, ClusterThreadJob, startWorkerNode } from './cluster/index.js';
export type { ClusterInvokeOptions, ClusterLockInfo, ClusterLoopOptions, ClusterSemaphoreOptions, ClusterThreadJobOptions, ClusterMutexOptions, ClusterPoolOptions, ClusterShardInfo, WorkerNode, WorkerNodeOptions } from './cluster/index.js';
