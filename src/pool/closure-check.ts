/**
 * Catching the first mistake everyone makes with script blocks: using a
 * variable or function of the surrounding code. The script block runs in
 * another thread from its source alone; such a name would be a
 * `ReferenceError` there, or, inside a parallel loop, one failed item per
 * input. So before anything is sent, the source is parsed (acorn-globals,
 * on acorn, loaded on first need) and every name it uses without declaring
 * it is looked up among the globals a runspace has. What is left is refused
 * with a {@link ScriptBlockClosureError} that names each one, where the
 * script block was written, and the three ways out.
 *
 * The check runs once per distinct source (the script registry caches it),
 * so a script block called a million times is parsed once.
 *
 * Compilers add helpers that live at the top of the compiled file: tsx and
 * esbuild's `__name` (keepNames), TypeScript's `__awaiter` and `__rest`
 * (async functions and object rest below ES2017 and ES2018). A runspace
 * provides those (see
 * protocol/script-source.ts); other helpers of older targets are named in
 * the error with the fix (compile for ES2022).
 *
 * @module
 */

import { createRequire } from 'node:module';
import { ScriptBlockClosureError } from '../errors.js';
import { PROVIDED_HELPERS, VITE_IMPORT_HELPER } from '../protocol/script-source.js';
import type { FunctionLocation } from './function-location.js';

interface GlobalReference {
  readonly name: string;
  readonly nodes: readonly { readonly parents?: readonly { readonly type: string; readonly operator?: string }[] }[];
}
type Detect = (source: string, options: { ecmaVersion: 'latest'; allowAwaitOutsideFunction?: boolean }) => GlobalReference[];

let detect: Detect | undefined;
let globals: Set<string> | undefined;

/** What a runspace's global scope has: the same as a fresh Node thread's, which this thread's is, plus what we provide. */
function runspaceGlobals(): Set<string> {
  if (globals !== undefined) return globals;
  globals = new Set(PROVIDED_HELPERS);
  for (let scope: object | null = globalThis; scope !== null; scope = Object.getPrototypeOf(scope)) {
    for (const name of Object.getOwnPropertyNames(scope)) globals.add(name);
  }
  return globals;
}

/** Names compilers emit as file-level helpers; a runspace does not have them. */
const COMPILER_HELPER = /^__(generator|assign|rest|spread\w*|values|read|extends|decorate|metadata|param|classPrivate\w+|createBinding|import\w+|esDecorate|runInitializers|setFunctionName|propKey|addDisposableResource|disposeResources|async\w*|objRest|spreadValues|spreadProps|publicField|private\w+|defProp\w*|require|toESM|commonJS|export|init|esm|using|callDispose|decorateClass|decorateParam)$/;

/**
 * The names `source` uses from outside itself that a runspace does not
 * have, in order of first use. A name only ever read by `typeof` is fine
 * (`typeof window !== 'undefined'` guards do not throw). A source the parser
 * cannot read yields none: the runspace reports it if it does not compile.
 */
export function freeVariables(source: string): string[] {
  detect ??= createRequire(import.meta.url)('acorn-globals') as Detect;
  let references: GlobalReference[] | undefined;
  for (const [open, close] of [['(', ')'], ['({', '})']] as const) {
    try {
      references = detect(`${open}${source}\n${close}`, { ecmaVersion: 'latest', allowAwaitOutsideFunction: true });
      break;
    } catch {
      // try the next wrapping
    }
  }
  if (references === undefined) return [];
  const available = runspaceGlobals();
  return references
    // `this` at the top of an arrow is the compiled wrapper's: undefined, never a closure.
    .filter((reference) => reference.name !== 'this' && !available.has(reference.name) && !VITE_IMPORT_HELPER.test(reference.name))
    .filter((reference) => reference.nodes.some((node) => !isTypeofOperand(node)))
    .map((reference) => reference.name);
}

function isTypeofOperand(node: GlobalReference['nodes'][number]): boolean {
  const parent = node.parents?.[node.parents.length - 2];
  return parent?.type === 'UnaryExpression' && parent.operator === 'typeof';
}

/** The error for a script block that uses `names` from outside itself. */
export function closureError(names: readonly string[], location: FunctionLocation | null, kind: 'script block' | 'startup script' = 'script block'): ScriptBlockClosureError {
  const where = location === null ? undefined : `${location.url}:${location.line}:${location.column}`;
  const list = names.map((name) => `'${name}'`).join(', ');
  const helpers = names.filter((name) => COMPILER_HELPER.test(name));
  const lines = [
    `The ${kind}${where === undefined ? '' : ` written at ${where}`} uses ${list}, which it neither declares nor receives.`,
    `A script block runs in another thread from its source alone: nothing of the code around it comes along (as in PowerShell, where $using: is the way in).`,
  ];
  if (helpers.length > 0) {
    lines.push(
      `${helpers.map((name) => `'${name}'`).join(', ')} ${helpers.length === 1 ? 'is a helper' : 'are helpers'} your compiler (TypeScript or esbuild) put at the top of the file for an older JavaScript target: compile for ES2022 or newer ("target": "ES2022" in tsconfig.json), or keep script blocks in a .js file.`,
    );
  }
  if (helpers.length < names.length) {
    lines.push(
      'Ways out: pass values as { using: { name } } (read as ctx.using.name) or { args: [...] }; load code inside the script block with await import(\'./module.js\'); or run a function of a module instead: invoke({ module: new URL(\'./tasks.js\', import.meta.url), export: \'name\' }). A global the runspace defines itself can be read as globalThis.name.',
    );
  }
  return new ScriptBlockClosureError(names, where, lines.join(' '));
}
