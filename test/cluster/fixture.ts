// What every cluster test file sets up: a redis-server of its own and the
// worker node processes its tests start, all stopped after the file; and the
// rule that CI runs the suite rather than skipping it.
import { afterAll, beforeAll, describe } from 'vitest';
import { Queue } from 'bullmq';
import { ClusterPool } from 'runspaces';
import { hasRedisServer, REDIS_MISSING, REPO_ROOT, startNode, startRedis, type NodeProcess, type RedisServer } from './redis-server.js';

/**
 * `describe` for a suite that needs redis-server: without it the suite is
 * skipped with a title that says what to install, and in CI the file fails.
 */
export function describeWithRedis(title: string, body: () => void): void {
  const available = hasRedisServer();
  if (!available && process.env.CI !== undefined) throw new Error(REDIS_MISSING);
  describe.skipIf(!available)(`${title}${available ? '' : ` (skipped: ${REDIS_MISSING})`}`, body);
}

export interface ClusterFixture {
  /** The file's redis-server, started before its first test. */
  readonly redis: RedisServer;
  /** A queue of its own for each test: no test sees another's jobs. */
  freshQueue(): string;
  /** Starts a node process (on `server`, default the file's Redis), killed after the file. */
  startNode(options: { queue: string; maxRunspaces?: number; lease?: string }, server?: RedisServer): Promise<NodeProcess>;
  /** `count` nodes on a fresh queue, and a pool on it. */
  cluster(count: number, options?: { lease?: string; maxRunspaces?: number; server?: RedisServer }): Promise<{ queue: string; pool: ClusterPool; started: NodeProcess[] }>;
}

/** A BullMQ `Queue` on `queue`, for a test to look into (its counts) or act on as an operator would; the test closes it. */
export function inspectQueue(queue: string, server: RedisServer): Queue {
  return new Queue(queue, { connection: { host: '127.0.0.1', port: server.port } });
}

/** Resolves once `condition()` holds, looking every 10 ms (the state looked at is in another process or in Redis). */
export async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** Registers the file's hooks; call it inside `describeWithRedis`. `prefix` names its queues. */
export function clusterFixture(prefix: string): ClusterFixture {
  let redis: RedisServer | undefined;
  const nodes: NodeProcess[] = [];
  let queueNumber = 0;

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    for (const node of nodes) node.process.kill('SIGKILL');
    await Promise.all(nodes.map((node) => node.exited));
    await redis?.stop();
  });

  const fixture: ClusterFixture = {
    get redis(): RedisServer {
      if (redis === undefined) throw new Error('the redis-server starts in beforeAll');
      return redis;
    },
    freshQueue: () => `${prefix}-${process.pid}-${queueNumber++}`,
    startNode: async (options, server = fixture.redis) => {
      const node = await startNode(server.url, options);
      nodes.push(node);
      return node;
    },
    cluster: async (count, options = {}) => {
      const server = options.server ?? fixture.redis;
      const queue = fixture.freshQueue();
      const started = await Promise.all(Array.from({ length: count }, () => fixture.startNode({ queue, lease: options.lease, maxRunspaces: options.maxRunspaces }, server)));
      const pool = await ClusterPool.open({ redis: server.url, queue, moduleRoot: REPO_ROOT });
      return { queue, pool, started };
    },
  };
  return fixture;
}
