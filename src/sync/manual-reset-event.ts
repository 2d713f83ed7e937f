/**
 * ManualResetEvent: a gate that stays open once set, until reset.
 *
 * STATE is 1 when set (signaled), 0 when reset. `set` stores 1 and wakes
 * every waiter; waiters pass while it is 1 and consume nothing.
 *
 * @module
 */

import { Kind, Slot } from './arena.js';
import { EventHandle } from './event-handle.js';
import { openExistingNamed, openNamed, tryOpenExistingNamed } from './named.js';
import { registerKind } from './shared-cells.js';

/**
 * An event that, once set, lets every waiter through until `reset()`.
 *
 * Not owned; no abandonment. `waitOne` blocks its thread (refused on the
 * main thread); `waitAsync` never blocks an event loop. A timeout or abort
 * leaves nothing behind.
 *
 * @example
 * ```ts
 * const ready = new ManualResetEvent(false);
 * const worker = pool.invoke((ctx) => {
 *   ctx.using.ready.waitOne();           // this runspace waits for the main thread's go
 *   return ctx.runspaceId;
 * }, { using: { ready } });
 * await new Promise((resolve) => setTimeout(resolve, 100));   // the main thread gets ready
 * ready.set();                          // every waiting runspace goes
 * await worker;
 * ```
 */
export class ManualResetEvent extends EventHandle {
  constructor(initialState = false) {
    super(Kind.ManualResetEvent, (slots) => {
      slots[Slot.State] = initialState ? 1 : 0;
    });
  }

  static open(name: string, initialState = false): { event: ManualResetEvent; createdNew: boolean } {
    const found = openNamed(Kind.ManualResetEvent, name, (slots) => {
      slots[Slot.State] = initialState ? 1 : 0;
    });
    return { event: EventHandle.adopt(ManualResetEvent, found.cell, found.name), createdNew: found.createdNew };
  }

  static openExisting(name: string): ManualResetEvent {
    const found = openExistingNamed(Kind.ManualResetEvent, name);
    return EventHandle.adopt(ManualResetEvent, found.cell, found.name);
  }

  static tryOpenExisting(name: string): ManualResetEvent | undefined {
    const found = tryOpenExistingNamed(Kind.ManualResetEvent, name);
    return found === undefined ? undefined : EventHandle.adopt(ManualResetEvent, found.cell, found.name);
  }

  /** True when set. */
  get isSet(): boolean {
    return Atomics.load(this.slots, Slot.State) === 1;
  }

  /** Opens the gate: every waiter, now and later, passes until `reset()`. */
  set(): void {
    Atomics.store(this.slots, Slot.State, 1);
    this.wake();
  }

  /** Closes the gate. */
  reset(): void {
    Atomics.store(this.slots, Slot.State, 0);
  }

  protected tryPass(): boolean {
    return Atomics.load(this.slots, Slot.State) === 1;
  }
}

registerKind(Kind.ManualResetEvent, ManualResetEvent, (cell, { name }) => EventHandle.adopt(ManualResetEvent, cell, name));
