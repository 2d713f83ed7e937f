/** Small helpers shared by the benchmark scripts: medians, ratios, the machine line. */
import { execFile } from 'node:child_process';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

export const median = (values) => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

export const machine = () =>
  `${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, ${process.platform}/${process.arch}`;

export const fmt = (value, digits = 1) =>
  value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(digits);

/** `--repeats N` (default 5) and `--json FILE` of a benchmark script's command line. */
export const benchArgs = (argv = process.argv) => {
  const flag = (name) => {
    const at = argv.indexOf(name);
    return at > 0 ? argv[at + 1] : undefined;
  };
  return { repeats: Number(flag('--repeats') ?? 5), json: flag('--json') };
};

/**
 * Run as `script --child LIBRARY METRIC`, a benchmark script measures once,
 * prints the figure and exits (true); otherwise it returns false.
 */
export async function serveChild(measure, argv = process.argv) {
  if (argv[2] !== '--child') return false;
  console.log(await measure(argv[3], argv[4]));
  process.exit(0);
}

/**
 * The other half of `serveChild`: runs `script --child LIBRARY METRIC` in a
 * fresh process and returns the figure it printed last. A run that fails is
 * noted and gives NaN, which `median` skips, so one bad sample never ends a
 * whole benchmark.
 */
export function measureInChild(script, library, metric, { execArgv = [], env, timeout = 300_000, log = console.log } = {}) {
  return new Promise((resolve) => {
    const args = [...execArgv, fileURLToPath(script), '--child', library, metric];
    execFile(process.execPath, args, { encoding: 'utf8', timeout, env: env && { ...process.env, ...env } }, (error, stdout) => {
      if (error) {
        log(`note: ${library} ${metric} run failed (${error.code ?? error.signal}); sample dropped`);
        resolve(Number.NaN);
      } else {
        resolve(Number(stdout.trim().split('\n').pop()));
      }
    });
  });
}

/** µs per awaited call of `call(1)`, over `calls` calls after `warmUp` warm-up calls (default 2,000). */
export async function awaitedCallMicros(call, calls, warmUp = 2_000) {
  for (let i = 0; i < warmUp; i++) await call(1);
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await call(1);
  return ((performance.now() - t0) * 1000) / calls;
}

/**
 * Iterations of the benchmarks' arithmetic loop (`x += Math.sqrt(i)`) that
 * take about `targetMs` on this machine, timed over at least five times that.
 */
export function calibrateIterations(targetMs) {
  let iters = 10_000;
  for (;;) {
    const start = performance.now();
    let x = 0;
    for (let i = 0; i < iters; i++) x += Math.sqrt(i);
    if (x < 0) throw new Error('unreachable');
    const ms = performance.now() - start;
    if (ms >= 5 * targetMs) return Math.round((iters / ms) * targetMs);
    iters *= 2;
  }
}
