import { setThreadGlobal, threadGlobal } from '../util/thread-globals.js';

/**
 * A runspace's session state: the variables that persist between calls in one
 * runspace, like `$script:` variables in a PowerShell runspace. It is never
 * shared: each runspace has its own, and values live in that thread only, so
 * they may be anything (functions, class instances, open handles).
 */
export interface SessionState {
  /** The value of a variable, or undefined when it is not set. */
  get<T = unknown>(name: string): T | undefined;
  /** Sets a variable; returns the session for chaining. */
  set(name: string, value: unknown): this;
  has(name: string): boolean;
  /** Removes a variable; true when it existed. */
  delete(name: string): boolean;
  /** Names of all variables, in the order they were first set. */
  keys(): string[];
}

export class MapSessionState implements SessionState {
  /** A session returned by a script block (`ctx.session.set(...)` chains) crosses as an empty object, not refused. */
  static {
    Object.defineProperty(MapSessionState.prototype, Symbol.for('runspaces.crossesAsPlainData'), { value: true });
  }

  readonly #variables = new Map<string, unknown>();

  constructor(initial?: Readonly<Record<string, unknown>>) {
    if (initial) for (const [name, value] of Object.entries(initial)) this.#variables.set(name, value);
  }

  get<T = unknown>(name: string): T | undefined {
    return this.#variables.get(name) as T | undefined;
  }

  set(name: string, value: unknown): this {
    this.#variables.set(name, value);
    return this;
  }

  has(name: string): boolean {
    return this.#variables.has(name);
  }

  delete(name: string): boolean {
    return this.#variables.delete(name);
  }

  keys(): string[] {
    return [...this.#variables.keys()];
  }
}

/**
 * The session state of the runspace this code runs in: in a runspace, the
 * same object as `ctx.session`; on the main thread (a runspace too, as in
 * PowerShell), a session of its own. Code that is not handed a context, such
 * as a class method or a module's function, reaches its session this way.
 *
 * @example
 * ```ts
 * import { sessionState } from 'runspaces';
 *
 * export function countVisit(): number {
 *   const session = sessionState();
 *   const visits = (session.get<number>('visits') ?? 0) + 1;
 *   session.set('visits', visits);
 *   return visits;
 * }
 * ```
 */
export function sessionState(): SessionState {
  // One session per thread, whichever copy of this module asks (see thread-globals.ts).
  return threadGlobal<SessionState>('session', () => new MapSessionState());
}

/** @internal A runspace installs its session before any user code runs. */
export function installSessionState(session: SessionState): SessionState {
  setThreadGlobal('session', session);
  return session;
}
