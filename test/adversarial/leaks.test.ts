import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';

/**
 * The short form of `bench/leaks.js`: each workload a long-running service
 * repeats, run for a second after a warm-up, must leave the main thread's
 * heap where it found it once every thread collected.
 */
test('no workload grows the main heap: fresh primitives, generated script blocks, loops, jobs, acquire/release, affinity proxies', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'runspaces-leaks-'));
  const json = join(dir, 'leaks.json');
  try {
    const script = new URL('../../bench/leaks.js', import.meta.url).pathname;
    await new Promise<void>((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', script, '--seconds', '1', '--json', json], { timeout: 120_000 }, (error) => (error ? reject(error) : resolve()));
    });
    const report = JSON.parse(readFileSync(json, 'utf8')) as { results: Record<string, { rounds: number; growthMiB: number }> };
    expect(Object.keys(report.results)).toHaveLength(6);
    for (const [name, { rounds, growthMiB }] of Object.entries(report.results)) {
      expect(rounds, name).toBeGreaterThan(0);
      // Generated sources: V8 itself keeps about 40 bytes per compiled `new Function` (measured without the
      // library); the library's own caches are bounded (test/pool/script-cache.test.ts).
      expect(growthMiB, name).toBeLessThan(name === 'generated script blocks' ? 4 : 1.5);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
