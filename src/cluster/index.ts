/**
 * The cluster (exported from the main entry): the same loops and calls across machines, on Redis.
 * Needs the optional packages `bullmq` and `ioredis`, and a Redis server.
 *
 * @module
 */

export { ClusterPool } from './cluster-pool.js';
export type { ClusterInvokeOptions, ClusterPoolOptions, ClusterShardInfo } from './cluster-pool.js';
export { ClusterLoop } from './cluster-loop.js';
export { ClusterThreadJob } from './cluster-thread-job.js';
export type { ClusterThreadJobOptions } from './cluster-thread-job.js';
export type { ClusterLoopOptions } from './cluster-loop.js';
export { startWorkerNode } from './worker-node.js';
export { ClusterMutex } from './cluster-mutex.js';
export { ClusterSemaphore } from './cluster-semaphore.js';
export type { ClusterSemaphoreOptions } from './cluster-semaphore.js';
export type { ClusterLockInfo, ClusterMutexOptions } from './cluster-mutex.js';
export type { WorkerNode, WorkerNodeOptions } from './worker-node.js';
