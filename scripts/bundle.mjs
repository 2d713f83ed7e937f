// `npm run build`, after tsc: bundles the two entry points Node loads most
// (decision 0007): a runspace's worker entry, and the package's main entry.
// Node 20's ESM loader pays about a millisecond per module file; importing
// the package went from about 33 ms (60-odd files) to about 12 ms bundled.
//
// `errors.js` and `sync/*` stay outside both bundles, shared files that
// both load, so that a runspace's error classes and sync primitives are the
// very objects the package exports. Each bundle sits one folder below
// dist/, as every source module does, so the paths modules compute from
// import.meta.url (the worker file, the library's folder) stay right.
import { build } from 'esbuild';
import { dirname, relative, resolve, sep } from 'node:path';

const dist = resolve('dist');
const sharedModule = (target) => target === resolve(dist, 'errors.js') || target.startsWith(resolve(dist, 'sync') + sep);

/** Keeps the shared modules external, with their path rewritten relative to the bundle. */
const shared = (outfile) => ({
  name: 'runspaces-shared-modules',
  setup(builder) {
    builder.onResolve({ filter: /^\.\.?\// }, (args) => {
      const target = resolve(args.resolveDir, args.path);
      if (!sharedModule(target)) return undefined;
      const path = relative(dirname(resolve(outfile)), target).split(sep).join('/');
      return { path: path.startsWith('.') ? path : `./${path}`, external: true };
    });
  },
});

const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' };

await build({ ...common, entryPoints: ['dist/runspace/worker.js'], outfile: 'dist/runspace/worker.bundle.js', plugins: [shared('dist/runspace/worker.bundle.js')] });
await build({
  ...common,
  entryPoints: ['dist/index.js'],
  outfile: 'dist/bundle/index.js',
  // Dependencies stay packages of their own (the parser loads on first need).
  external: ['fs-native-extensions', 'acorn', 'acorn-walk', 'acorn-globals'],
  plugins: [shared('dist/bundle/index.js')],
});
