import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const scratch = mkdtempSync(join(tmpdir(), 'runspaces-cli-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: readonly string[], entry = cli): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [entry, ...args], { encoding: 'utf8', timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

interface Report {
  machine: { cores: number; node: string };
  options: { durationMs: number; repeats: number };
  points: { lock: string; threads: number; criticalNs: number; runs: { throughput: number; fairness: number; handoffRate: number; p50Ns: number; p99Ns: number; maxNs: number; counts: number[] }[]; median: { throughput: number } }[];
  skipped: { lock: string; reason: string }[];
}

describe('runspaces bench contention', () => {
  test('measures every lock at every thread count, repeated, and writes JSON, an SVG chart and a markdown table', async () => {
    const json = join(scratch, 'contention.json');
    const svg = join(scratch, 'contention.svg');
    const result = await run([
      'bench', 'contention', '--threads', '1,2', '--lock', 'mutex,semaphore,rwlock,async-mutex', '--critical', '0,1000',
      '--duration', '100ms', '--repeats', '2', '--json', json, '--svg', svg, '--markdown',
    ]);
    expect(result.stderr).toContain('point 16/16');
    expect(result.code).toBe(0);
    const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    expect(report.machine.node).toBe(process.version);
    expect(report.points).toHaveLength(2 * 4 * 2);
    for (const point of report.points) {
      expect(point.runs).toHaveLength(2);
      for (const r of point.runs) {
        const total = r.counts.reduce((a, b) => a + b, 0);
        expect(total).toBeGreaterThan(0);
        // Throughput is exactly the acquisitions counted over the run's length.
        expect(r.throughput).toBeCloseTo(total / 0.1, 6);
        expect(r.counts).toHaveLength(point.threads);
        expect(r.fairness).toBeGreaterThan(0);
        expect(r.fairness).toBeLessThanOrEqual(1 + 1e-12);
        expect(r.handoffRate).toBeGreaterThanOrEqual(0);
        expect(r.handoffRate).toBeLessThanOrEqual(1);
        expect(r.p50Ns).toBeLessThanOrEqual(r.p99Ns);
        expect(r.p99Ns).toBeLessThanOrEqual(r.maxNs);
      }
      // One contender has no one to hand the lock to.
      if (point.threads === 1) expect(point.runs.every((r) => r.handoffRate === 0 && r.fairness === 1)).toBe(true);
    }
    expect(result.stdout).toMatch(/^\| lock \| threads \| critical \| throughput \| fairness \| p50 \| p99 \| max \| handoffs \|$/m);
    expect(result.stdout).toContain(`Node ${process.version}`);
    const chart = readFileSync(svg, 'utf8');
    expect(chart.startsWith('<svg')).toBe(true);
    // Two panels per critical section length, a line per lock in each.
    expect(chart.match(/<path /g)).toHaveLength(2 * 2 * 4);
    expect(chart).toContain('async-mutex (async flows, 1 thread)');
  });

  test('--version prints the package version; --help, bench --help and bench <name> --help print the usage and exit 0', async () => {
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const result = await run([flag]);
      expect(result.code).toBe(0);
      expect(result.stdout.trim()).toBe(version);
    }
    for (const args of [['--help'], ['bench', '--help'], ['bench', 'contention', '--help'], ['bench', 'pool', '-h']]) {
      const result = await run(args);
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stdout).toMatch(/^usage:/);
      expect(result.stdout).toMatch(/Exit codes: 0 done, 1 a benchmark failed, 2 a usage error/);
    }
  });

  test('bad options exit with code 2 and say which option expects what', async () => {
    const cases: [string[], RegExp][] = [
      [['bench', 'contention', '--threads', '0,x'], /--threads expects whole numbers/],
      [['bench', 'contention', '--lock', 'spinlock'], /--lock: "spinlock" is not one of mutex, semaphore/],
      [['bench', 'contention', '--duration', 'forever'], /--duration expects a duration/],
      [['bench', 'contention', '--colour'], /unknown option --colour/],
      [['bench', 'nothing'], /unknown benchmark "nothing"/],
      [['serve'], /unknown command "serve"/],
    ];
    for (const [args, message] of cases) {
      const result = await run(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toContain('usage:');
    }
  });

  test('a peer that is not installed is skipped with a note, not a crash', async () => {
    // The built package alone, away from this repository's node_modules: async-mutex cannot be found.
    const alone = join(scratch, 'alone');
    cpSync(join(root, 'dist'), join(alone, 'dist'), { recursive: true });
    cpSync(join(root, 'package.json'), join(alone, 'package.json'));
    const result = await run(['bench', 'contention', '--threads', '2', '--lock', 'mutex,async-mutex', '--critical', '0', '--duration', '50ms', '--repeats', '1', '--quiet'], join(alone, 'dist/cli/main.js'));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Mutex (runspaces)');
    expect(result.stdout).toContain('note: skipped async-mutex: async-mutex is not installed');
    expect(result.stderr).toBe('');
  });
});

describe('runspaces bench pool and parallel', () => {
  test('the package ships the command and the benchmark scripts it runs', async () => {
    const packed = await new Promise<string>((resolve, reject) => {
      execFile('npm', ['pack', '--dry-run', '--json'], { cwd: root, encoding: 'utf8' }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
    });
    const files = (JSON.parse(packed) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    for (const file of ['dist/cli/main.js', 'bench/pool.js', 'bench/parallel.js', 'bench/peers.js', 'bench/stats.js', 'bench/workers/increment.js']) {
      expect(files).toContain(file);
    }
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(manifest.bin.runspaces).toBe('./dist/cli/main.js');
  });

  test('their options are checked before anything runs', async () => {
    const result = await run(['bench', 'pool', '--repeats', 'many']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--repeats expects a whole number/);
  });
});
