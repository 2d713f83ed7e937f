// The runspaces demo: `npm start`.
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbandonedMutexError, Mutex, RunspacePool, RunspaceBrokenError, sessionState } from 'runspaces';
import { Amplifier, Scaler } from './affinity/amplifier.js';
import { updateDeploymentStatus } from './deployment-status/deployment-status.js';

const line = (text = '') => console.log(text);
/** What a step showed, in plain words, under its line. */
const explain = (text) => console.log(`   - ${text}`);
const bar = (done, total, width = 30) => {
  const filled = Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round((done / total) * 100)).padStart(3)}%`;
};

const pool = await RunspacePool.open({
  minRunspaces: 1,
  maxRunspaces: 2,
  initialSessionState: {
    variables: { region: 'eu-west' },
    startup: [(ctx) => ctx.session.set('openedAt', Date.now())],
  },
});
try {
line(`Pool ${pool.state} with ${pool.stats().runspaces} runspace(s), up to ${pool.getMaxRunspaces()}.`);
explain('A pool of runspaces: worker threads that each keep their own variables between calls. It opens more when work waits.');

// 1. A script block with using values and arguments. No closure crosses.
const area = await pool.invoke((ctx, r) => ctx.using.pi * r * r, { args: [2], using: { pi: Math.PI } });
line(`1. Script block: area of r=2 is ${area.toFixed(3)}`);
explain("A function ran in another thread. It saw only what it was given (using values and arguments), never this file's variables.");

// 2. Streams: progress and warnings reach the caller while the work runs.
const total = 40;
await pool.invoke((ctx, steps) => {
  for (let i = 1; i <= steps; i++) {
    const until = Date.now() + 10;
    while (Date.now() < until);
    ctx.writeProgress({ activity: 'Crunching', percentComplete: (i / steps) * 100 });
  }
  ctx.writeWarning('crunching done; the numbers were made up');
}, {
  args: [total],
  onRecord: (record) => {
    if (record.stream === 'progress') {
      const pct = record.progress.percentComplete;
      // Redraw in place on a terminal; in a log, print only the finished bar.
      if (process.stdout.isTTY) process.stdout.write(`\r2. Progress ${bar(pct, 100)}`);
      else if (pct >= 100) line(`2. Progress ${bar(pct, 100)}`);
    }
    if (record.stream === 'warning') line(`${process.stdout.isTTY ? '\n' : ''}   WARNING (runspace ${record.runspaceId}): ${record.message}`);
  },
});

explain('The running function reported progress and a warning; both arrived here while it worked.');

// 3. A runspace of your own: its session persists between calls.
const rs = await pool.acquire();
try {
  await rs.invoke((ctx) => ctx.session.set('visits', 0));
  for (let i = 0; i < 3; i++) await rs.invoke((ctx) => ctx.session.set('visits', ctx.session.get('visits') + 1));
  line(`3. Acquired runspace ${rs.id}: visits=${await rs.getVariable('visits')}, region=${await rs.getVariable('region')}`);
  explain('We took one runspace for ourselves: what we stored in it was still there on the next call.');
} finally {
  rs.release(); // in TypeScript or Node 24+: `await using rs = await pool.acquire()`
}

// 4. A real module's function, in parallel over both runspaces.
const tasks = new URL('./tasks.js', import.meta.url);
const started = performance.now();
const digests = await Promise.all(['alpha', 'beta', 'gamma', 'delta'].map((word) =>
  pool.invoke({ module: tasks, export: 'stretch' }, { args: [word] })));
line(`4. Module function on ${pool.stats().runspaces} runspaces: ${digests.join(' ')} in ${Math.round(performance.now() - started)} ms`);
explain('A function exported by a real module ran on both runspaces at once, with its own imports.');

// 5. Faults: errors cross with their class and cause; a dying runspace is replaced.
const error = await pool.invoke(() => { throw new RangeError('out of range', { cause: new Error('row 7') }); }).catch((e) => e);
line(`5. ${error.constructor.name}: ${error.message} (cause: ${error.cause.message})`);
const broken = await pool.invoke(() => process.exit(3)).catch((e) => e);
line(`   ${broken instanceof RunspaceBrokenError ? 'RunspaceBrokenError' : 'unexpected'}: exit code ${broken.exitCode}; pool still answers: ${await pool.invoke(() => 'yes')}`);
explain('Errors come back with their class and cause; a runspace that crashed was replaced, and the pool kept working.');

// 6. Cancellation reaches the running function through ctx.signal.
const timedOut = await pool.invoke((ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))), { timeout: 50 }).catch((e) => e);
line(`6. ${timedOut.name}: ${timedOut.message}`);
explain('A call that took too long was cancelled: the function saw ctx.signal fire, and we got a TimeoutError.');

// 7. Many tiny calls: batched automatically.
const n = 100_000;
const burstStart = performance.now();
await Promise.all(Array.from({ length: n }, (_, i) => pool.invoke((ctx, x) => x + 1, { args: [i] })));
const seconds = (performance.now() - burstStart) / 1000;
line(`7. ${n.toLocaleString('en-US')} tiny calls in ${Math.round(seconds * 1000)} ms (${Math.round(n / seconds).toLocaleString('en-US')}/s)`);
explain('Many small calls were sent several per message, so each cost a few microseconds.');

// 8. A named mutex guards one status file shared by every runspace (the
//    PowerShell Invoke-ActionWithMutex pattern, within one process).
const dir = mkdtempSync(join(tmpdir(), 'runspaces-demo-'));
const statusFile = join(dir, 'status.json');
writeFileSync(statusFile, JSON.stringify({ updates: 0 }));
const { mutex: statusLock } = Mutex.open('Local\\demo-status');
await Promise.all(Array.from({ length: 4 }, () => pool.invoke(async (ctx, file, rounds) => {
  const { Mutex } = await import('runspaces');
  const { readFileSync, writeFileSync } = await import('node:fs');
  const lock = Mutex.openExisting('Local\\demo-status');
  for (let i = 0; i < rounds; i++) {
    lock.waitOne();
    try {
      const status = JSON.parse(readFileSync(file, 'utf8'));
      writeFileSync(file, JSON.stringify({ updates: status.updates + 1 }));
    } finally {
      lock.releaseMutex();
    }
  }
}, { args: [statusFile, 250] })));
const finalStatus = await statusLock.withLock(() => JSON.parse(readFileSync(statusFile, 'utf8')));
line(`8. Status file after 4 runspaces x 250 locked updates: ${finalStatus.updates} updates (none lost)`);
explain('Four runspaces updated one file, taking turns with a shared Mutex: no update was lost.');
rmSync(dir, { recursive: true, force: true });

// 9. A runspace that dies holding a mutex: the next owner is told.
const fragile = new Mutex();
const died = await pool.invoke((ctx) => { ctx.using.lock.waitOne(); process.exit(1); }, { using: { lock: fragile } }).catch(() => 'a runspace died');
// The pool frees a dead runspace's locks before it reports the death.
const takeover = await fragile.acquire().then(() => 'a clean lock', (e) => e);
line(`9. ${died} holding a mutex; the next owner got ${takeover instanceof AbandonedMutexError ? 'AbandonedMutexError, and owns the mutex' : takeover}`);
explain('A runspace died while holding the Mutex: the next owner was told (AbandonedMutexError) so it can check the data.');
fragile.releaseMutex();

// 10. ForEach-Object -Parallel: a million items on every runspace, with a
//     progress bar driven by the loop's own count.
const items = 1_000_000;
const loopStart = performance.now();
let sum = 0;
let shown = -1;
const loop = pool.forEachParallel((function* () { for (let i = 0; i < items; i++) yield i; })(), (x, ctx) => x * ctx.using.scale, {
  using: { scale: 2 }, throttleLimit: 2,
});
for await (const value of loop) {
  sum += value;
  const pct = Math.floor((loop.completed / items) * 100);
  if (pct !== shown && process.stdout.isTTY) process.stdout.write(`\r10. Parallel loop ${bar(pct, 100)}`);
  shown = pct;
}
const loopSeconds = (performance.now() - loopStart) / 1000;
line(`${process.stdout.isTTY ? '\r' : ''}10. Parallel loop over ${items.toLocaleString('en-US')} items from a generator: sum ${sum.toLocaleString('en-US')}, ${Math.round(items / loopSeconds).toLocaleString('en-US')} items/s`);
explain('A parallel loop (ForEach-Object -Parallel) pulled a million items from a generator, only as fast as both runspaces processed them.');

// 11. Items report progress themselves; with errorAction: 'continue' a failing item does not stop the
//     loop and the loop ends normally (we read loop.errors). Without it, the loop would end by throwing
//     ParallelLoopError listing the failures, so a failing loop is never silent.
const checks = pool.forEachParallel(['a.txt', 'b.txt', 'broken.txt', 'c.txt'], (file, ctx) => {
  if (file.startsWith('broken')) throw new Error(`cannot read ${file}`);
  ctx.writeProgress({ activity: 'Checking', status: file, percentComplete: 100 });
  return file.toUpperCase();
}, { ordered: true, onProgress: () => {}, errorAction: 'continue' });
const checked = await checks.toArray();
line(`11. Ordered outputs ${JSON.stringify(checked)}; ${checks.errors.length} error record: item ${checks.errors[0].index}, "${checks.errors[0].cause.message}"`);
explain('Each item reported its progress; one failed and was recorded with its index while the others went on.');

// 12. Thread jobs: Start-ThreadJob, Wait-Job, Receive-Job.
const job = pool.startThreadJob((ctx, a, b) => {
  ctx.writeVerbose(`adding ${ctx.input.length} inputs`);
  return a + b + ctx.input.reduce((x, y) => x + y, 0);
}, { args: [1, 2], input: [10, 20], name: 'adder' });
const states = [job.state];
job.on('stateChanged', ({ state }) => states.push(state));
await job.wait();
const received = job.receive();
line(`12. Thread job '${job.name}': ${states.join(' -> ')}; output ${JSON.stringify(received.output)}; ${received.records.length} verbose record`);
explain("A background job went through its states like PowerShell's Start-ThreadJob; we collected its output.");

// 13. Separate processes, each with runspaces, share one status file under a
// machine-wide mutex; one of them is killed mid-update, holding it.
const statusDir = mkdtempSync(join(tmpdir(), 'runspaces-demo-status-'));
const sharedStatusFile = join(statusDir, 'deployment-status.json');
const updater = (args) => new Promise((resolve) => {
  const child = fork(new URL('./deployment-status/updater.js', import.meta.url), args, {
    env: { ...process.env, DEPLOYMENT_STATUS_FILE: sharedStatusFile },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  child.on('exit', (code, signal) => resolve(signal ?? code));
});
try {
  const statusStart = performance.now();
  await Promise.all(['a', 'b', 'c'].map((label) => updater([label, '2', '10'])));
  const crashed = await updater(['crash', '1', '1', '--crash']);
  const { status, recovered } = await updateDeploymentStatus({ verified: 'done' }, { file: sharedStatusFile });
  line(`13. 3 processes x 2 runspaces x 10 updates, then one process killed mid-update (${crashed}): revision ${status.revision}, ${Object.keys(status.steps).length} steps, none lost; the next writer was told the Global\\ mutex was abandoned: ${recovered} (${Math.round(performance.now() - statusStart)} ms)`);
  explain('Separate programs shared one status file under a machine-wide Global\\ Mutex; one was killed mid-write and nothing was lost.');
} finally {
  rmSync(statusDir, { recursive: true, force: true });
}

// 14. Class affinity, the seed's Amplifier: runspaces call a main-thread object
// while the main thread keeps rewriting its own session. Each call runs at
// home, one at a time; a NoRunspaceAffinity instance is copied instead.
sessionState().set('amplifier.calls', 0);
const amplifier = new Amplifier(1.001);
let rewrites = 0;
let rewriting = true;
const mainLoop = (async () => {
  while (rewriting) {
    sessionState().set('rewrites', ++rewrites);
    await new Promise((resolve) => setImmediate(resolve));
  }
})();
const affinityStart = performance.now();
const amplified = await pool.forEachParallel([1, 2, 3, 4], async (item, ctx) => {
  let last = 0;
  for (let i = 0; i < 250; i++) last = await ctx.using.amplifier.getValue(item);
  return { last, ranOn: await ctx.using.amplifier.ranOn(), caller: ctx.runspaceId, copy: ctx.using.scaler.apply(item) };
}, { throttleLimit: 4, using: { amplifier, scaler: new Scaler(10) } }).toArray();
rewriting = false;
await mainLoop;
const callers = new Set(amplified.map((a) => a.caller)).size;
line(`14. Amplifier (RunspaceAffinity): ${sessionState().get('amplifier.calls')} calls from ${callers} runspace(s) ran on thread ${amplified[0].ranOn} (home) while it rewrote its session ${rewrites} times, no error; Scaler (NoRunspaceAffinity) copies ran on threads ${[...new Set(amplified.map((a) => a.copy.ranOn))].join(', ')} (${Math.round(performance.now() - affinityStart)} ms)`);
explain('An object that must stay where it was made was used from other threads through proxies, one call at a time; a copied object ran wherever it was sent.');

const stats = pool.stats();
line(`\nStats: ${stats.completed} completed, ${stats.failed} failed, run time p50 ${(stats.runTime.p50 * 1000).toFixed(1)} µs, p99 ${(stats.runTime.p99 * 1000).toFixed(1)} µs`);
} finally {
  await pool.close();
}
