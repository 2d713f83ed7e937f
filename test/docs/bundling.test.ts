import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, expect, test } from 'vitest';

const run = promisify(execFile);
// Inside this package, so that an external 'runspaces' resolves to it (a package's self-reference).
const generated = fileURLToPath(new URL('../fixtures/.generated/', import.meta.url));
mkdirSync(generated, { recursive: true });
const dir = mkdtempSync(join(generated, 'bundle-'));
const packageEntry = fileURLToPath(new URL('../../dist/bundle/index.js', import.meta.url));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const app = `
import { RunspacePool } from 'runspaces';
const pool = await RunspacePool.open({ maxRunspaces: 1 });
try {
  console.log(await pool.invoke((_ctx, n) => n * 2, { args: [21] }));
} catch (error) {
  console.log(error.message);
}
await pool.close();
`;

// The README's advice for bundlers, checked both ways.
test.each([
  ['kept external, as the README says', true, /^42$/m],
  ['bundled in, the pool says what to do', false, /worker file is missing .*keep 'runspaces' external/],
])('an application bundled with esbuild, runspaces %s', async (_name, external, expected) => {
  const entry = join(dir, `app-${external}.mjs`);
  const outfile = join(dir, `out-${external}/app.mjs`);
  writeFileSync(entry, app);
  await build({ entryPoints: [entry], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'silent', ...(external ? { external: ['runspaces'] } : { alias: { runspaces: packageEntry } }) });
  const { stdout } = await run(process.execPath, [outfile], { cwd: dir });
  expect(stdout).toMatch(expected);
}, 60_000);
