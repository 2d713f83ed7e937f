/**
 * AutoResetEvent: each `set` lets exactly one waiter through.
 *
 * STATE is 1 when set. A waiter passes by compare-exchanging 1 → 0, so two
 * waiters can never pass on one `set`; `set` stores 1 and wakes one waiter.
 * Setting an event that is already set does nothing more (as in .NET).
 *
 * @module
 */

import { Kind, Slot } from './arena.js';
import { EventHandle } from './event-handle.js';
import { openExistingNamed, openNamed, tryOpenExistingNamed } from './named.js';
import { registerKind } from './shared-cells.js';

/**
 * An event that releases one waiter per `set()` and resets itself.
 *
 * Not fair (any waiter may be the one released); not owned. `waitOne`
 * blocks its thread (refused on the main thread); `waitAsync` never blocks.
 *
 * @example
 * ```ts
 * const itemReady = new AutoResetEvent(false);
 * const consumer = pool.invoke((ctx) => {
 *   let taken = 0;
 *   while (ctx.using.itemReady.waitOne(1_000)) taken++;   // one wake-up per set()
 *   return taken;
 * }, { using: { itemReady } });
 * itemReady.set();                                        // wakes one consumer
 * console.log(await consumer);
 * ```
 */
export class AutoResetEvent extends EventHandle {
  constructor(initialState = false) {
    super(Kind.AutoResetEvent, (slots) => {
      slots[Slot.State] = initialState ? 1 : 0;
    });
  }

  static open(name: string, initialState = false): { event: AutoResetEvent; createdNew: boolean } {
    const found = openNamed(Kind.AutoResetEvent, name, (slots) => {
      slots[Slot.State] = initialState ? 1 : 0;
    });
    return { event: EventHandle.adopt(AutoResetEvent, found.cell, found.name), createdNew: found.createdNew };
  }

  static openExisting(name: string): AutoResetEvent {
    const found = openExistingNamed(Kind.AutoResetEvent, name);
    return EventHandle.adopt(AutoResetEvent, found.cell, found.name);
  }

  static tryOpenExisting(name: string): AutoResetEvent | undefined {
    const found = tryOpenExistingNamed(Kind.AutoResetEvent, name);
    return found === undefined ? undefined : EventHandle.adopt(AutoResetEvent, found.cell, found.name);
  }

  /** Lets one waiter (now or the next to come) through. */
  set(): void {
    Atomics.store(this.slots, Slot.State, 1);
    this.wake(1);
  }

  reset(): void {
    Atomics.store(this.slots, Slot.State, 0);
  }

  protected tryPass(): boolean {
    return Atomics.compareExchange(this.slots, Slot.State, 1, 0) === 1;
  }

  protected override restorePass(): void {
    this.set();
  }
}

registerKind(Kind.AutoResetEvent, AutoResetEvent, (cell, { name }) => EventHandle.adopt(AutoResetEvent, cell, name));
