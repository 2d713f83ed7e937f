import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { filesUnder } from './helpers.js';

/**
 * The structure docs/architecture.md describes, checked on the sources:
 * layers import only downward, no import cycle between files, no file too
 * big to read, and nothing internal in the published types.
 */
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(repo, 'src');

/** Top to bottom; a file may import its own layer and the layers below it. */
const LAYERS = ['cli', 'cluster', 'facade', 'parallel', 'pool', 'runspace', 'affinity', 'protocol', 'sync', 'util', 'errors'] as const;


function layerOf(file: string): string {
  const top = relative(srcDir, file).split(/[\\/]/)[0]!;
  return top.replace(/\.ts$/, '');
}

const sources = filesUnder(srcDir, '.ts');
const imports = new Map<string, string[]>();
for (const file of sources) {
  const text = readFileSync(file, 'utf8');
  const targets = [...text.matchAll(/(?:from|import)\s+'(\.{1,2}\/[^']+)'/g)].map((m) => resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  imports.set(file, targets);
}

describe('the layers of src/', () => {
  test('every source file belongs to a known layer', () => {
    const unknown = sources.map(layerOf).filter((layer) => layer !== 'index' && !(LAYERS as readonly string[]).includes(layer));
    expect(unknown).toEqual([]);
  });

  test('imports only point down (pool never imports parallel, protocol never imports affinity)', () => {
    const upward: string[] = [];
    for (const [file, targets] of imports) {
      const from = layerOf(file);
      if (from === 'index') continue;
      for (const target of targets) {
        const to = layerOf(target);
        if (LAYERS.indexOf(to as never) < LAYERS.indexOf(from as never)) upward.push(`${relative(srcDir, file)} -> ${relative(srcDir, target)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  test('no import cycle between files, type-only imports included', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string): void => {
      state.set(file, 'visiting');
      stack.push(file);
      for (const target of imports.get(file) ?? []) {
        if (state.get(target) === 'visiting') cycles.push([...stack.slice(stack.indexOf(target)), target].map((f) => relative(srcDir, f)).join(' -> '));
        else if (!state.has(target) && imports.has(target)) visit(target);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of sources) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });

  test('no source file is over 600 lines', () => {
    const long = sources
      .map((file) => [relative(srcDir, file), readFileSync(file, 'utf8').split('\n').length] as const)
      .filter(([, lines]) => lines > 600);
    expect(long).toEqual([]);
  });
});

describe('the published package', () => {
  test('no @internal member reaches the published .d.ts files', () => {
    const leaked = filesUnder(join(repo, 'dist'), '.d.ts').filter((file) => readFileSync(file, 'utf8').includes('@internal'));
    expect(leaked.map((file) => relative(repo, file))).toEqual([]);
  });

  test('the runtime exports are exactly the public API (an accidental export fails here)', async () => {
    const api = await import('runspaces');
    expect(Object.keys(api).sort()).toEqual([
      'AbandonedMutexError', 'AffinityClassError', 'AutoResetEvent', 'Barrier', 'BarrierPostPhaseError', 'BlockingWaitError', 'ClusterLoop', 'ClusterMutex', 'ClusterNodeLostError', 'ClusterPool', 'ClusterSemaphore', 'ClusterThreadJob', 'ClusterUnavailableError', 'ClusterValueError', 'CountdownEvent',
      'InvalidArgumentError', 'InvalidOperationError', 'InvalidPoolStateError', 'Job', 'LockDirectoryError', 'ManualResetEvent',
      'ModuleExportError', 'Mutex', 'NoRunspaceAffinity', 'ObjectDisposedError', 'OperationCancelledError', 'ParallelChildJob', 'ParallelItemError',
      'ParallelJob', 'ParallelLoop', 'ParallelLoopError', 'PoolClosedError', 'PoolQueueFullError', 'ProxyReleasedError', 'ReaderWriterLock', 'RelativeImportError',
      'RemotePropertyError', 'Runspace', 'RunspaceAffinity', 'RunspaceBrokenError', 'RunspaceOpenError', 'RunspacePool',
      'RunspaceReleasedError', 'RunspacesError', 'ScriptBlockClosureError', 'ScriptBlockError', 'Semaphore', 'SemaphoreFullError', 'SyncArenaFullError',
      'SynchronizationLockError', 'ThreadJob', 'TimeoutError', 'UncloneableValueError', 'UsingFunctionError', 'WaitHandle', 'WaitHandleKindError',
      'WaitHandleNotFoundError', 'affinityStats', 'currentContext', 'defaultPool', 'getRemoteProperty', 'homeRunspaceId', 'isRemote',
      'noRunspaceAffinity', 'parallel', 'releaseRemote', 'runspaceAffinity', 'sessionState', 'setRemoteProperty', 'startWorkerNode',
    ]);
  });

  test('only thread-globals.ts keeps state on globalThis', () => {
    const writers = sources.filter((file) => /globalThis as/.test(readFileSync(file, 'utf8'))).map((file) => relative(srcDir, file));
    expect(writers.sort()).toEqual(['pool/function-location.ts', 'util/thread-globals.ts']);
  });
});
