import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The JSON report lets .ci/run print a plain "N passed, N failed" line.
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results/vitest.json' },
    // Runspaces are real threads: keep test files from starving each other on 2 cores.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The library is loaded as a user loads it: built files, through the package's exports map.
    server: { deps: { external: [/\/dist\//, /\/test\/fixtures\//, /\/examples\//] } },
  },
});
