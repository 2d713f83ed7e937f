// One process of the deployment-status scenario, as a scheduled task would be:
//   node examples/deployment-status/updater.js <label> [runspaces=2] [updates=10] [--crash]
// Each of its runspaces applies its own updates to the shared status file,
// marking step `<label>.<runspace>.<n>` done. Run several at once, from
// several terminals: no update is ever lost. With --crash, the process kills
// itself (SIGKILL) in the middle of one more update, holding the mutex.
import { RunspacePool } from 'runspaces';

const crash = process.argv.includes('--crash');
const [label = `p${process.pid}`, runspaceArg = '2', updateArg = '10'] = process.argv.slice(2).filter((arg) => arg !== '--crash');
const runspaces = Number(runspaceArg);
const updates = Number(updateArg);
const statusModule = new URL('./deployment-status.js', import.meta.url).href;

const pool = await RunspacePool.open({ minRunspaces: runspaces, maxRunspaces: runspaces });
try {
  const acquired = await Promise.all(Array.from({ length: runspaces }, () => pool.acquire()));
  const recovered = await Promise.all(acquired.map((runspace, index) =>
    runspace.invoke(async (ctx, module, prefix, count, crashAfter) => {
      const { updateDeploymentStatus } = await import(module);
      let recoveries = 0;
      for (let n = 0; n < count; n++) {
        const { recovered } = await updateDeploymentStatus({ [`${prefix}.${n}`]: 'done' });
        if (recovered) recoveries++;
      }
      if (crashAfter) {
        await updateDeploymentStatus((status) => {
          status.steps[`${prefix}.lost`] = 'never written';
          process.kill(process.pid, 'SIGKILL'); // the whole process, mid-update
        });
      }
      return recoveries;
    }, { args: [statusModule, `${label}.${index}`, updates, crash && index === 0] })));
  for (const runspace of acquired) runspace.release();
  const report = { label, pid: process.pid, updates: runspaces * updates, recovered: recovered.reduce((a, b) => a + b, 0) };
  if (process.send) process.send(report);
  else console.log(JSON.stringify(report));
} finally {
  await pool.close();
}
