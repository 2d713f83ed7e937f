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
  if (!mayUseOutsideNames(source)) return [];
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

const KEYWORDS = new Set([
  'async', 'await', 'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else',
  'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof', 'let', 'new', 'null', 'of',
  'return', 'static', 'super', 'switch', 'this', 'throw', 'true', 'try', 'typeof', 'var', 'void', 'while', 'with', 'yield',
  'get', 'set', 'arguments',
]);

/**
 * The parser costs about 7 ms and 3 MiB to load, paid by the first script
 * block of every process. Most script blocks are small arrows whose every
 * name is a parameter, a local, a keyword or a global; this cheap scan
 * proves that much and skips the parser. It answers true ("parse to be
 * sure") at the least doubt: a template with `${`, a `/` (a regular
 * expression could hide anything), destructuring, a name it cannot place.
 * A wrong "false" could only ever come from a name declared in a nested
 * scope and used outside it, which would then fail in the runspace as a
 * plain `ReferenceError`, as before this check existed.
 */
function mayUseOutsideNames(source: string): boolean {
  if (source.includes('${') || source.includes('/')) return true;
  // Strings hold no names (a template without ${ is a string too).
  const code = source.replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`[^`]*`/g, '""');
  const declared = new Set<string>();
  for (const match of code.matchAll(/\b(?:const|let|var|function|class)\s+([A-Za-z_$][\w$]*)/g)) declared.add(match[1]!);
  if (/\b(?:const|let|var)\s*[[{]/.test(code)) return true;
  for (const match of code.matchAll(/(?:^|[^\w$.])(?:async\s*)?\(([^()]*)\)\s*(?:=>|\{)|\bfunction\s*[\w$]*\s*\(([^()]*)\)|([A-Za-z_$][\w$]*)\s*=>/g)) {
    const list = match[1] ?? match[2] ?? match[3] ?? '';
    if (/[[{=]/.test(list)) return true;
    for (const name of list.split(',')) {
      const parameter = name.trim().replace(/^\.\.\./, '');
      if (parameter !== '') declared.add(parameter);
    }
  }
  const available = runspaceGlobals();
  for (const match of code.matchAll(/(?<![\w$.])([A-Za-z_$][\w$]*)(?![\w$])/g)) {
    const name = match[1]!;
    if (KEYWORDS.has(name) || declared.has(name) || available.has(name)) continue;
    // An object literal's key (`{ name: ... }`) is no reference.
    if (/^\s*:/.test(code.slice(match.index! + name.length)) && !/\?\s*$/.test(code.slice(0, match.index))) continue;
    return true;
  }
  return false;
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
