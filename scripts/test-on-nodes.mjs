// `npm run test:nodes`: the test suite, on the built package, under every
// maintained Node besides the one running npm (issue 17). Each Node comes from
// the npm registry's `node-<platform>-<arch>` package, installed once into
// .nodes/<major>/ (ignored by git). Run `npm test` first: it builds dist/.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const MAJORS = (process.env.RUNSPACES_TEST_NODES ?? '22,24').split(',').map((v) => v.trim()).filter(Boolean);
const binaryPackage = `node-${process.platform}-${process.arch}`;
let failed = false;

for (const major of MAJORS) {
  const prefix = join('.nodes', major);
  const node = join(prefix, 'node_modules', binaryPackage, 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
  if (!existsSync(node)) {
    mkdirSync(prefix, { recursive: true });
    console.log(`== installing ${binaryPackage}@${major} into ${prefix}`);
    execFileSync('npm', ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--prefix', prefix, `${binaryPackage}@${major}`], { stdio: 'inherit' });
  }
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  console.log(`== npm test's suite on Node ${version}`);
  const run = spawnSync(node, ['node_modules/vitest/vitest.mjs', 'run'], { stdio: 'inherit' });
  const report = JSON.parse(readFileSync('.test-results/vitest.json', 'utf8'));
  console.log(`Node ${version}: ${report.numPassedTests} passed, ${report.numFailedTests} failed`);
  if (run.status !== 0 || report.numFailedTests > 0 || report.numTotalTests === 0) failed = true;
}
process.exitCode = failed ? 1 : 0;
