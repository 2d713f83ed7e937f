/**
 * A runspace handed out by `pool.acquire()`: exclusively yours until released.
 *
 * @module
 */

import { RunspaceReleasedError } from '../errors.js';
import type { InvokeOptions, InvokeOptionsArgument, ModuleFunction, ScriptBlock } from './invocation.js';
import type { RunspaceHost } from './runspace-host.js';

/** What a `Runspace` needs from its pool. Internal. */
export interface RunspaceOwner {
  invokePinned(host: RunspaceHost, target: Function | ModuleFunction, options: InvokeOptions<readonly unknown[], unknown>): Promise<unknown>;
  getVariable(host: RunspaceHost, name: string): Promise<unknown>;
  setVariable(host: RunspaceHost, name: string, value: unknown): Promise<void>;
  release(host: RunspaceHost): void;
}

/**
 * One runspace, acquired from a pool for your use alone.
 *
 * Calls made through it run in this runspace, in the order made, against its
 * session, and never wait behind the pool's other queued work. The pool's
 * idle timer never closes an acquired runspace. Release it when done (or use
 * `await using`) so the pool can schedule work on it again; its session
 * state stays as you left it.
 *
 * If the runspace dies, its pending and later calls reject with
 * `RunspaceBrokenError`.
 *
 * @example
 * ```ts
 * await using rs = await pool.acquire();
 * await rs.setVariable('counter', 0);
 * await rs.invoke((ctx) => ctx.session.set('counter', ctx.session.get<number>('counter')! + 1));
 * console.log(await rs.getVariable('counter')); // 1
 * ```
 */
export class Runspace implements AsyncDisposable {
  readonly #owner: RunspaceOwner;
  readonly #host: RunspaceHost;
  #released = false;

  /** @internal Runspaces come from `RunspacePool.acquire()`. */
  constructor(owner: RunspaceOwner, host: RunspaceHost) {
    this.#owner = owner;
    this.#host = host;
  }

  /** The runspace's id (its worker thread id), the same as `ctx.runspaceId` inside it. */
  get id(): number {
    return this.#host.id;
  }

  /** True after `release()`. */
  get released(): boolean {
    return this.#released;
  }

  /** Runs an exported function of a module in this runspace. */
  invoke<R = unknown>(target: ModuleFunction, options?: InvokeOptions): Promise<R>;
  /** Runs a script block in this runspace. See `RunspacePool.invoke`. */
  invoke<A extends readonly unknown[], R, U extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>>(
    fn: ScriptBlock<A, R, U>,
    ...options: InvokeOptionsArgument<A, U>
  ): Promise<Awaited<R>>;
  invoke(target: Function | ModuleFunction, options: InvokeOptions<readonly unknown[], unknown> = {}): Promise<unknown> {
    if (this.#released) return Promise.reject(new RunspaceReleasedError(this.id));
    return this.#owner.invokePinned(this.#host, target, options);
  }

  /** A variable of this runspace's session (it must be cloneable to come back). */
  getVariable<T = unknown>(name: string): Promise<T | undefined> {
    if (this.#released) return Promise.reject(new RunspaceReleasedError(this.id));
    return this.#owner.getVariable(this.#host, name) as Promise<T | undefined>;
  }

  /** Sets a variable of this runspace's session to a clone of `value`. */
  setVariable(name: string, value: unknown): Promise<void> {
    if (this.#released) return Promise.reject(new RunspaceReleasedError(this.id));
    return this.#owner.setVariable(this.#host, name, value);
  }

  /** Gives the runspace back to its pool (after calls already made finish). Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#owner.release(this.#host);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.release();
  }
}
