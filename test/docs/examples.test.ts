import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as acorn from 'acorn';
import * as walk from 'acorn-walk';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';
import { filesUnder } from '../helpers.js';
import { freeVariables } from '../../dist/pool/closure-check.js';

/**
 * Documentation as tests: every TypeScript or JavaScript block of README.md
 * and docs/, and every `@example` of the TSDoc editors show, is
 *
 * 1. type-checked, strict, as a module of its own (with every export of
 *    'runspaces' in scope and the few outside names an example may assume,
 *    declared in CONTEXT below), and
 * 2. checked for the first mistake of script blocks: every function an
 *    example passes to invoke, forEachParallel, parallel or startThreadJob
 *    must use no name of the code around it (the library's own check,
 *    closure-check.ts), since such an example would fail when run.
 */

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(repo, 'test', 'fixtures', '.generated', 'docs');

interface Example {
  readonly name: string;
  readonly code: string;
  /** JavaScript examples are compiled, not type-checked (their parameters carry no types). */
  readonly javascript: boolean;
}


function markdownExamples(): Example[] {
  const examples: Example[] = [];
  const files = [join(repo, 'README.md'), ...filesUnder(join(repo, 'docs'), '.md').filter((f) => !f.includes(`${join('docs', 'api')}`))];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    let n = 0;
    for (const match of text.matchAll(/```(ts|js|typescript|javascript)\n([\s\S]*?)```/g)) {
      examples.push({ name: `${relative(repo, file)} block ${++n}`, code: match[2]!, javascript: match[1]!.startsWith('j') });
    }
  }
  return examples;
}

function tsdocExamples(): Example[] {
  const examples: Example[] = [];
  for (const file of filesUnder(join(repo, 'src'), '.ts')) {
    const text = readFileSync(file, 'utf8');
    let n = 0;
    for (const match of text.matchAll(/@example\s*\n\s*\*\s*```(ts|js)\n([\s\S]*?)\n\s*\*\s*```/g)) {
      const code = match[2]!.split('\n').map((line) => line.replace(/^\s*\* ?/, '')).join('\n');
      examples.push({ name: `${relative(repo, file)} @example ${++n}`, code, javascript: match[1] === 'js' });
    }
  }
  return examples;
}

/** Every name 'runspaces' exports, values and types, read from its public entry. */
function publicNames(): { values: string[]; types: string[] } {
  const index = readFileSync(join(repo, 'src', 'index.ts'), 'utf8');
  const values: string[] = [];
  const types: string[] = [];
  for (const match of index.matchAll(/export (type )?\{([^}]*)\} from/g)) {
    const names = match[2]!.split(',').map((name) => name.trim()).filter(Boolean);
    (match[1] ? types : values).push(...names);
  }
  return { values, types };
}

/** Outside names an example may assume: what the user's program around it would have. */
const CONTEXT = `
import type { ClusterPool, RunspacePool, Runspace, Remote } from 'runspaces';
declare global {
  const pool: RunspacePool;
  const cluster: ClusterPool;
  const rs: Runspace;
  const files: string[];
  const urls: string[];
  const url: string;
  const file: string;
  let total: number;
  const cache: Map<string, unknown>;
  const key: string;
  const fresh: unknown;
  const statusPath: string;
  const amplifier: Remote<{ getValue(value: number): number; scale: number }>;
  const counter: Remote<{ increment(): number }>;
}
export {};
`;

/** What CONTEXT declares, made for real when the examples run. */
const RUNTIME_CONTEXT = `
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunspacePool } from 'runspaces';

const pool = await RunspacePool.open({ minRunspaces: 1, maxRunspaces: 4 });
const statusPath = join(mkdtempSync(join(tmpdir(), 'runspaces-docs-')), 'status.json');
writeFileSync(statusPath, '{}');
const stubs = new URL('./', import.meta.url).href;
Object.assign(globalThis, {
  pool, statusPath,
  files: ['a.png', 'b.png'], urls: ['data:text/plain,a', 'data:text/plain,b'], url: 'data:text/plain,hello', file: 'a.png',
  total: 0, cache: new Map([['k', 1]]), key: 'k', fresh: 2,
  amplifier: await pool.invoke(async (ctx) => new (await import(ctx.using.stubs + 'amplifier.js')).Amplifier(2), { using: { stubs } }),
  counter: await pool.invoke(async (ctx) => new (await import(ctx.using.stubs + 'counter.js')).Counter(), { using: { stubs } }),
});
`;

/** The same stubs as JavaScript, for runspaces (which load them without a TypeScript loader). */
const RUNTIME_STUBS: Record<string, string> = {
  'images.js': 'export function resize(file, width) { return file.length * width; }',
  'hashing.js': "export function hashFile(file, algorithm) { return `${algorithm}:${file}`; }",
  'model.js': 'export function loadModel() { return { predict: (input) => input }; }',
  'downloads.js': 'export async function download(url) { return url?.length ?? 0; }',
  'tasks.js': 'export function resize(_ctx, file) { return file; }',
  'piscina-worker.js': 'export default (task) => task * 2;',
  'amplifier.js': "import { runspaceAffinity } from 'runspaces';\nexport class Amplifier { constructor(scale = 1) { this.scale = scale; } getValue(value) { return value * this.scale; } }\nrunspaceAffinity(Amplifier);",
  'counter.js': "import { runspaceAffinity } from 'runspaces';\nexport class Counter { constructor() { this.count = 0; } increment() { return ++this.count; } }\nrunspaceAffinity(Counter);",
};

/**
 * Examples that define a decorated class are type-checked but not run: a
 * runspace that receives a copied instance imports the module that defined
 * the class, which here would be the example itself (its top-level code
 * again), and a TypeScript one (no loader reaches a runspace on Node 20).
 */
const definesClasses = (example: Example): boolean => /@(No)?RunspaceAffinity\(\)|runspaceAffinity\(|noRunspaceAffinity\(/.test(example.code);

/**
 * Cluster examples are type-checked but not run here: they need a Redis and
 * worker node processes, which test/cluster/ starts for real.
 */
const needsCluster = (example: Example): boolean => /ClusterPool|ClusterMutex|ClusterSemaphore|startWorkerNode|\bcluster\./.test(example.code);

/** A module that runs every runnable example in turn, each bounded in time, and prints what failed. */
const RUNNER = (files: readonly string[]): string => `
import './runtime-context.js';
const failures = [];
for (const file of ${JSON.stringify(files)}) {
  let timer;
  try {
    await Promise.race([
      import(file),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('did not finish within 20 s')), 20_000); }),
    ]);
  } catch (error) {
    failures.push(file.split('/').at(-1) + ': ' + (error?.stack ?? String(error)).split('\\n').slice(0, 3).join(' | '));
  } finally {
    clearTimeout(timer);
  }
}
console.log(JSON.stringify({ ran: ${files.length}, failures }));
await globalThis.pool.destroy();
process.exit(0);
`;

/** Modules examples import relative to themselves. */
const STUBS: Record<string, string> = {
  'images.ts': 'export function resize(file: string, width: number): number { return file.length * width; }',
  'hashing.ts': "export function hashFile(file: string, algorithm: string): string { return `${algorithm}:${file}`; }",
  'model.ts': 'export function loadModel(): { predict(input: number): number } { return { predict: (input) => input }; }',
  'downloads.ts': 'export async function download(url?: string): Promise<number> { return url?.length ?? 0; }',
  'tasks.ts': 'export function resize(_ctx: unknown, file: string): string { return file; }',
  // What a program run with tsx loads when an example imports './amplifier.js': decorated, like the JavaScript one.
  'amplifier.ts': "import { runspaceAffinity } from 'runspaces';\nexport class Amplifier { constructor(public scale = 1) {} getValue(value: number): number { return value * this.scale; } }\nrunspaceAffinity(Amplifier);",
  'counter.ts': "import { runspaceAffinity } from 'runspaces';\nexport class Counter { count = 0; increment(): number { return ++this.count; } }\nrunspaceAffinity(Counter);",
};

const examples = [...markdownExamples(), ...tsdocExamples()];

function modulesOf(example: Example, index: number): { file: string; source: string } {
  const { values, types } = publicNames();
  // The example's own imports from 'runspaces' are replaced by one that brings every export into scope.
  const body = example.code.replace(/^[ \t]*import\s+(type\s+)?\{[^}]*\}\s+from\s+'runspaces';\s*$/gm, '');
  const prelude = `import { ${values.join(', ')} } from 'runspaces';\n${example.javascript ? '' : `import type { ${types.join(', ')} } from 'runspaces';\n`}`;
  const file = join(out, `example-${String(index).padStart(2, '0')}.${example.javascript ? 'js' : 'ts'}`);
  return { file, source: `// ${example.name}\n${prelude}${body}\nexport {};\n` };
}

describe('documentation examples', () => {
  test('there are examples to check (README, docs, TSDoc)', () => {
    expect(examples.filter((e) => e.name.startsWith('README')).length).toBeGreaterThanOrEqual(5);
    expect(examples.filter((e) => e.name.includes('@example')).length).toBeGreaterThanOrEqual(25);
  });

  test('every example type-checks, strict', () => {
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'context.d.ts'), CONTEXT);
    for (const [name, source] of Object.entries(STUBS)) writeFileSync(join(out, name), source);
    for (const [name, source] of Object.entries(RUNTIME_STUBS)) writeFileSync(join(out, name), source);
    writeFileSync(join(out, 'runtime-context.ts'), RUNTIME_CONTEXT);
    const files = examples.map((example, i) => {
      const { file, source } = modulesOf(example, i);
      writeFileSync(file, source);
      return file;
    });
    const program = ts.createProgram([...files, join(out, 'context.d.ts'), join(out, 'runtime-context.ts'), ...Object.keys(STUBS).map((f) => join(out, f))], {
      strict: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2024.d.ts', 'lib.esnext.disposable.d.ts', 'lib.dom.d.ts'],
      types: ['node'],
      typeRoots: [join(repo, 'node_modules', '@types')],
      noEmit: true,
      skipLibCheck: true,
      allowJs: true,
      checkJs: false,
      allowImportingTsExtensions: false,
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const where = d.file ? `${readFileSync(d.file.fileName, 'utf8').split('\n')[0]} line ${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line - 2}` : '';
      return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    expect(problems).toEqual([]);
  });

  test('no example passes a script block that uses names of the code around it', () => {
    const problems: string[] = [];
    for (const example of examples) {
      const { outputText } = ts.transpileModule(example.code, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } });
      const ast = acorn.parse(outputText, { ecmaVersion: 'latest', sourceType: 'module', allowAwaitOutsideFunction: true });
      walk.simple(ast, {
        CallExpression(node) {
          const call = node as acorn.CallExpression;
          const callee = call.callee;
          const name = callee.type === 'MemberExpression' && callee.property.type === 'Identifier' ? callee.property.name : callee.type === 'Identifier' ? callee.name : '';
          const at = name === 'invoke' || name === 'startThreadJob' ? 0 : name === 'forEachParallel' || name === 'parallel' ? 1 : -1;
          const fn = at >= 0 ? call.arguments[at] : undefined;
          if (fn === undefined || (fn.type !== 'ArrowFunctionExpression' && fn.type !== 'FunctionExpression')) return;
          const free = freeVariables(outputText.slice(fn.start, fn.end));
          if (free.length > 0) problems.push(`${example.name}: ${name}(...) script block uses ${free.join(', ')}`);
        },
      });
    }
    expect(problems).toEqual([]);
  });

  test('every example runs (those that define decorated classes or need a cluster excepted), with the names it assumes made for real', async () => {
    const runnable = examples.map((example, i) => ({ example, file: modulesOf(example, i).file })).filter(({ example }) => !definesClasses(example) && !needsCluster(example));
    expect(runnable.length).toBeGreaterThanOrEqual(30);
    writeFileSync(join(out, 'run-all.ts'), RUNNER(runnable.map(({ file }) => pathToFileURL(file).href)));
    const { execFile } = await import('node:child_process');
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(join(repo, 'node_modules', '.bin', 'tsx'), ['run-all.ts'], { cwd: out, timeout: 120_000 }, (error, output, errors) => (error ? reject(new Error(`${error.message}\n${errors}`)) : resolve(output)));
    });
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as { ran: number; failures: string[] };
    expect(report.failures).toEqual([]);
    expect(report.ran).toBe(runnable.length);
  }, 150_000);
});
