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

/** µs per awaited call of `call(1)`, over `calls` calls after 2,000 warm-up calls. */
export async function awaitedCallMicros(call, calls) {
  for (let i = 0; i < 2_000; i++) await call(1);
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await call(1);
  return ((performance.now() - t0) * 1000) / calls;
}
