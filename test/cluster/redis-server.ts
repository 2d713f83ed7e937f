// A real redis-server for the cluster tests: on a loopback port, in a
// temporary directory, with no persistence; and worker node processes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REDIS_MISSING = 'the cluster suite needs redis-server on PATH (Debian: apt-get install -y redis-server); .ci/run installs it';

export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** Kills it (SIGKILL) and starts it again on the same port, empty: a restart without persistence. */
  restart(): Promise<void>;
}

/** Starts redis-server on a free loopback port; resolves once it accepts connections. */
export async function startRedis(): Promise<RedisServer> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const dir = mkdtempSync(join(tmpdir(), 'runspaces-redis-'));
    let server = await launch(port, dir);
    if (server === undefined) {
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    const kill = async (): Promise<void> => {
      if (server!.exitCode !== null || server!.signalCode !== null) return;
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server!.kill('SIGKILL');
      await exited;
    };
    return {
      url: `redis://127.0.0.1:${port}`,
      port,
      stop: async () => {
        await kill();
        rmSync(dir, { recursive: true, force: true });
      },
      restart: async () => {
        await kill();
        const again = await launch(port, dir);
        if (again === undefined) throw new Error(`redis-server did not start again on port ${port}`);
        server = again;
      },
    };
  }
  throw new Error('could not start redis-server on a free port');
}

/** One redis-server process; undefined when it exits before it is ready (the port was taken). */
async function launch(port: number, dir: string): Promise<ChildProcess | undefined> {
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const ready = await new Promise<boolean>((resolve) => {
    let output = '';
    server.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve(true);
    });
    server.once('exit', () => resolve(false));
  });
  return ready ? server : undefined;
}

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface NodeProcess {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or signal) once the process ended. */
  readonly exited: Promise<number | string>;
}

/** Starts `runspaces worker` as its own process; resolves once it takes work. */
export async function startNode(redisUrl: string, options: { queue: string; maxRunspaces?: number; lease?: string }): Promise<NodeProcess> {
  const child = spawn(process.execPath, [CLI, 'worker', '--redis', redisUrl, '--queue', options.queue, '--max-runspaces', String(options.maxRunspaces ?? 2), '--lease', options.lease ?? '2s', '--module-root', REPO_ROOT], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('taking work')) resolve();
    });
    void exited.then((code) => reject(new Error(`worker node exited (${code}) before taking work:\n${output}`)));
  });
  return { process: child, pid: child.pid!, exited };
}
