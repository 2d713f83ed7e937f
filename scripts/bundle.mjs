// `npm run build`, after tsc: bundles the two entry points Node loads
// (decision 0007): a runspace's worker entry, and the package's main entry.
// Node 20's ESM loader pays about half a millisecond per module file, in the
// main thread and again in every runspace.
//
// Both are built in one esbuild run with code splitting: what both use (the
// error classes, the sync primitives, the protocol) lands in one shared
// chunk that both import. A runspace whose code imports `runspaces` thus
// gets the very classes its runspace runs on, one copy per thread, and
// `instanceof` holds. Every output sits one folder below dist/, as every
// source module does, so the paths modules compute from import.meta.url
// (the worker file, the library's folder) stay right.
import { build } from 'esbuild';

await build({
  entryPoints: { 'bundle/index': 'dist/index.js', 'runspace/worker.bundle': 'dist/runspace/worker.js' },
  outdir: 'dist',
  chunkNames: 'bundle/shared-[hash]',
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  // Class and function names are API (`constructor.name`, error names): never renamed in the shared chunk.
  keepNames: true,
  // Dependencies stay packages of their own (the parser loads on first need; the cluster's
  // optional bullmq and ioredis only when a cluster is opened).
  external: ['fs-native-extensions', 'acorn', 'acorn-walk', 'acorn-globals', 'bullmq', 'ioredis'],
});
