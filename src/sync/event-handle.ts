/**
 * What the event primitives share: a cell, an optional name, a blocking wait
 * for runspaces and an async wait for everyone, both built on the announced
 * wait of `waiting.ts` (STATE is the watched slot, WAITERS counts waiters so
 * a signal skips `Atomics.notify` when nobody waits).
 *
 * @module
 */

import { isMainThread } from 'node:worker_threads';
import { newCell, Slot, type Cell, type Kind } from './arena.js';
import type { MutexAcquireOptions } from './mutex.js';
import { adoptCell, shareCell, takeAdopted, type SharedHandle } from './shared-cells.js';
import { assertMayBlock, blockUntil, deadlineAndSignal, deadlineOf, waitUntil } from './waiting.js';
import { timeoutMs } from '../util/deadline.js';
import { ObjectDisposedError } from '../errors.js';
import { WaitCanceller } from './cancel-waits.js';
import { HandleState } from './handles.js';

/** Options of an async wait: `timeout` ms (then false), `signal` (then `OperationCancelledError`). */
export type WaitOptions = MutexAcquireOptions;

const READY: Promise<boolean> = Promise.resolve(true);

export abstract class EventHandle {
  readonly #cell: Cell;
  readonly #name: string | null;
  readonly #kind: Kind;
  readonly #handle: HandleState;
  readonly #canceller = new WaitCanceller();

  /** `init` sets up a new cell; it is skipped when wrapping an existing one. */
  protected constructor(kind: Kind, init: (slots: Int32Array) => void) {
    this.#kind = kind;
    const adopted = takeAdopted();
    if (adopted !== undefined) {
      ({ cell: this.#cell, name: this.#name } = adopted);
    } else {
      this.#cell = newCell(kind);
      init(this.#cell.slots);
      this.#name = null;
    }
    this.#handle = new HandleState(this, this.#cell, new.target.name);
  }

  /** @internal Builds an instance of `ctor` around an existing cell. */
  static adopt<T>(ctor: new () => T, cell: Cell, name: string | null): T {
    return adoptCell(cell, name, () => new ctor());
  }

  /** The name, without a `Local\` prefix; null when unnamed. */
  get name(): string | null {
    return this.#name;
  }

  protected get slots(): Int32Array {
    this.#handle.assertLive();
    return this.#cell.slots;
  }

  /** True when a waiter may pass now; may consume what lets it pass. */
  protected abstract tryPass(): boolean;

  readonly #pass = (): boolean => this.tryPass();

  /** Blocks this runspace's thread until the event lets it pass (true) or `timeout` ms pass (false). Refused on the main thread. */
  waitOne(timeout?: number): boolean {
    this.#handle.assertLive();
    if (isMainThread) assertMayBlock(`${this.constructor.name}.waitOne`, `await ${this.constructor.name.replace(/^./, (c) => c.toLowerCase())}.waitAsync()`);
    return blockUntil(this.#cell.slots, Slot.State, Slot.Waiters, this.#pass, deadlineOf(timeoutMs('timeout', timeout)));
  }

  /** Waits without blocking: true when the event let it pass, false on timeout; rejects on abort. */
  waitAsync(options?: WaitOptions): Promise<boolean> {
    if (this.#handle.disposed) return Promise.reject(new ObjectDisposedError(this.constructor.name));
    if (options === undefined && this.tryPass()) return READY;
    try {
      const [deadline, signal] = deadlineAndSignal(options);
      return waitUntil(this.#cell.slots, Slot.State, Slot.Waiters, this.#pass, deadline, this.#canceller.signalFor(signal));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Disposes this object (also `using`): pending waits reject (`OperationCancelledError`, its
   * reason an `ObjectDisposedError`) and later calls throw `ObjectDisposedError`; a name is freed once every object
   * viewing it, in any thread, is disposed or collected.
   */
  dispose(): void {
    if (this.#handle.disposed) return;
    this.#canceller.cancel(new ObjectDisposedError(this.constructor.name));
    this.#handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal For `WaitHandle.waitAny/waitAll`: passes (consuming what an auto-reset event consumes) if the event lets a waiter through now. */
  tryTakeForWait(): 'taken' | false {
    return this.tryPass() ? 'taken' : false;
  }

  /** @internal Undoes `tryTakeForWait` (a `waitAll` that could not take every handle). */
  untakeForWait(): void {
    this.restorePass();
  }

  /** Undoes what `tryPass` consumed; events that consume nothing have nothing to undo. */
  protected restorePass(): void {}

  /** Wakes waiters after STATE changed, unless nobody waits. */
  protected wake(count = Infinity): void {
    if (Atomics.load(this.#cell.slots, Slot.Waiters) > 0) Atomics.notify(this.#cell.slots, Slot.State, count);
  }

  /** @internal What crosses a thread boundary in place of this object. */
  toShared(): SharedHandle {
    this.#handle.retainForCrossing();
    return shareCell(this.#kind, this.#cell, this.#name);
  }
}
