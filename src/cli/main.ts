#!/usr/bin/env node
/**
 * The `runspaces` command.
 *
 *   runspaces bench contention [--threads 1,2,4,8] [--lock mutex,semaphore,rwlock,async-mutex]
 *                              [--critical 0,1000,10000] [--duration 2s] [--repeats 3]
 *                              [--json FILE] [--svg FILE] [--markdown] [--quiet]
 *   runspaces bench pool     [--repeats 5] [--json FILE]
 *   runspaces bench parallel [--repeats 5] [--json FILE]
 *   runspaces worker --redis URL [--queue NAME] [--max-runspaces N] [--module-root DIR] [--lease 30s]
 *
 * @module
 */

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { choices, count, duration, nonNegativeIntegers, parseArgs, positiveIntegers, UsageError } from './args.js';
import { LOCK_KINDS, runContention, type LockKind } from './contention.js';
import { markdownTable, terminalTable } from './contention-report.js';
import { ProgressLine } from './progress.js';
import { contentionSvg } from './svg-chart.js';

const USAGE = `usage:
  runspaces --version                    the installed version
  runspaces --help                       this text (also: runspaces bench [name] --help)
  runspaces bench contention [options]   locks under contention: throughput, fairness, latency, handoffs
      --threads 1,2,4,8          contending threads (default: 1,2,4,8)
      --lock LIST                ${LOCK_KINDS.join(', ')}
                                 (default: mutex,semaphore,rwlock,async-mutex)
      --critical 0,1000,10000    busy work inside the lock, in ns (default: 0,1000,10000)
      --duration 2s              each run's length (default: 2s)
      --repeats 3                runs per point; medians are reported (default: 3)
      --json FILE                write every run and median as JSON
      --svg FILE                 write a chart: throughput and p99 against threads, a line per lock
      --markdown                 print a markdown table instead of the terminal table
      --quiet                    no live progress
  runspaces bench pool [--repeats 5] [--json FILE]
      tiny-task bursts and awaited round trips: runspaces against piscina, tinypool, workerpool, poolifier
  runspaces bench parallel [--repeats 5] [--json FILE]
      a parallel loop against one task per item on each peer
  runspaces worker --redis URL [options]  a worker node of a cluster: runs calls and loops queued in Redis
      --redis redis://host:port  where the cluster's Redis is (required)
      --queue NAME               the queue to take work from (default: runspaces)
      --max-runspaces N          runspaces of this node (default: the cores)
      --module-root DIR          where module functions and relative import() resolve (default: .)
      --lease 30s                how long a job stays this node's without a renewal: a node that
                                 dies gives its jobs back this long after (default: 30s)
      SIGTERM or SIGINT: finishes the jobs it holds, takes no more, exits 0.

Peers are optional: one that is not installed is skipped with a note.
Exit codes: 0 done, 1 a benchmark failed, 2 a usage error (the message names the bad argument).`;

async function contention(argv: readonly string[]): Promise<void> {
  const { positional, options } = parseArgs(argv, new Set(['markdown', 'quiet']), new Set(['threads', 'lock', 'critical', 'duration', 'repeats', 'json', 'svg']));
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const text = (name: string): string | undefined => {
    const value = options.get(name);
    return typeof value === 'string' ? value : undefined;
  };
  const threads = positiveIntegers('threads', text('threads') ?? '1,2,4,8');
  const locks = choices<LockKind>('lock', text('lock') ?? 'mutex,semaphore,rwlock,async-mutex', LOCK_KINDS);
  const criticalNs = nonNegativeIntegers('critical', text('critical') ?? '0,1000,10000');
  const durationMs = duration('duration', text('duration') ?? '2s');
  const repeats = count('repeats', text('repeats') ?? '3', 100);
  const progress = options.has('quiet') ? undefined : new ProgressLine(process.stderr);
  const report = await runContention({
    threads,
    locks,
    criticalNs,
    durationMs,
    repeats,
    onProgress: progress?.update,
  });
  progress?.done();
  console.log(options.has('markdown') ? markdownTable(report) : terminalTable(report));
  const json = text('json');
  if (json !== undefined) writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  const svg = text('svg');
  if (svg !== undefined) writeFileSync(svg, `${contentionSvg(report)}\n`);
  if (threads.some((t) => t > availableParallelism())) {
    console.log(`\nnote: ${availableParallelism()} cores here; points above that many threads share cores (time slicing shows in latency).`);
  }
}

/**
 * The pool and loop comparisons are the project's own benchmark scripts,
 * shipped with the package: one source for `npm run bench` and this command.
 */
function script(name: 'pool' | 'parallel', argv: readonly string[]): Promise<void> {
  const { positional, options } = parseArgs(argv, new Set(), new Set(['repeats', 'json']));
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const file = fileURLToPath(new URL(`../../bench/${name}.js`, import.meta.url));
  if (!existsSync(file)) throw new UsageError(`the ${name} benchmark script is missing (${file}); reinstall runspaces`);
  const args = [file];
  const repeats = options.get('repeats');
  if (typeof repeats === 'string') args.push('--repeats', String(count('repeats', repeats, 100)));
  const json = options.get('json');
  if (typeof json === 'string') args.push('--json', json);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`the ${name} benchmark ended with ${signal ?? `exit code ${code}`}`))));
  });
}

async function worker(argv: readonly string[]): Promise<void> {
  const { positional, options } = parseArgs(argv, new Set(), new Set(['redis', 'queue', 'max-runspaces', 'module-root', 'lease']));
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const text = (name: string): string | undefined => {
    const value = options.get(name);
    return typeof value === 'string' ? value : undefined;
  };
  const redis = text('redis');
  if (redis === undefined) throw new UsageError('worker needs --redis redis://host:port');
  const maxRunspaces = text('max-runspaces');
  // The package's own bundle, as an application would import it.
  const { startWorkerNode } = (await import(new URL('../bundle/index.js', import.meta.url).href)) as typeof import('../index.js');
  const node = await startWorkerNode({
    redis,
    queue: text('queue'),
    maxRunspaces: maxRunspaces === undefined ? undefined : count('max-runspaces', maxRunspaces, 1024),
    moduleRoot: text('module-root'),
    leaseMs: duration('lease', text('lease') ?? '30s'),
  });
  console.error(`runspaces worker: taking work from queue '${text('queue') ?? 'runspaces'}' at ${redis}`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      console.error('runspaces worker: finishing the jobs held, then stopping');
      void node.close().then(() => {
        // Everything is closed; a connection library's stray timer must not keep the node up.
        setTimeout(() => process.exit(0), 2_000).unref();
        resolve();
      });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

const HELP = new Set(['--help', '-h', 'help']);

/** The package's version, from the package.json beside dist/. */
function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

async function main(argv: readonly string[]): Promise<void> {
  const [command, subcommand, ...rest] = argv;
  if (command === '--version' || command === '-v' || command === 'version') {
    console.log(version());
    return;
  }
  // `runspaces --help`, `runspaces bench --help` and `runspaces bench <name> --help` all print the usage, exit 0.
  if (command === undefined || HELP.has(command) || argv.some((arg) => HELP.has(arg))) {
    console.log(USAGE);
    return;
  }
  if (command === 'worker') return worker(argv.slice(1));
  if (command !== 'bench') throw new UsageError(`unknown command "${command}"`);
  if (subcommand === 'contention') return contention(rest);
  if (subcommand === 'pool' || subcommand === 'parallel') return script(subcommand, rest);
  throw new UsageError(subcommand === undefined ? 'bench needs a benchmark: contention, pool or parallel' : `unknown benchmark "${subcommand}": use contention, pool or parallel`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    console.error(`runspaces: ${error.message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  console.error(error);
  process.exitCode = 1;
});
