/**
 * CountdownEvent: set once a count of signals has arrived.
 *
 * STATE is the count still missing; MAXIMUM the initial count (for
 * `reset()`). `signal(n)` compare-exchanges the count down and wakes every
 * waiter when it reaches 0; waiters pass while it is 0.
 *
 * @module
 */

import { InvalidArgumentError, InvalidOperationError, shown } from '../errors.js';
import { Kind, Slot } from './arena.js';
import { EventHandle } from './event-handle.js';
import { openExistingNamed, openNamed, tryOpenExistingNamed } from './named.js';
import { registerKind } from './shared-cells.js';

function assertCount(name: string, value: unknown, min: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 0x7fffffff) {
    throw new InvalidArgumentError(name, `expected an integer from ${min} to 2147483647, got ${shown(value)}`);
  }
}

/**
 * An event set when its count reaches zero: each participant calls
 * `signal()`, waiters wait for all of them.
 *
 * `signal` past zero and `addCount` on a set event throw
 * `InvalidOperationError` and change nothing, as in .NET.
 *
 * @example
 * ```ts
 * const done = new CountdownEvent(files.length);
 * for (const file of files) {
 *   void pool.invoke(async (ctx, f: string) => {
 *     await (await import('./images.js')).resize(f, 640);
 *     ctx.using.done.signal();
 *   }, { args: [file], using: { done } });
 * }
 * await done.waitAsync();
 * ```
 */
export class CountdownEvent extends EventHandle {
  constructor(initialCount = 0) {
    super(Kind.CountdownEvent, (slots) => {
      assertCount('initialCount', initialCount, 0);
      slots[Slot.State] = initialCount;
      slots[Slot.Maximum] = initialCount;
    });
  }

  /**
   * The countdown of this name in this process, created with `initialCount`
   * when there is none (the count is ignored when it exists).
   *
   * @example
   * ```ts
   * const { event: loaded } = CountdownEvent.open('modules-loaded', 3);
   * loaded.signal();
   * ```
   */
  static open(name: string, initialCount = 0): { event: CountdownEvent; createdNew: boolean } {
    assertCount('initialCount', initialCount, 0);
    const found = openNamed(Kind.CountdownEvent, name, (slots) => {
      slots[Slot.State] = initialCount;
      slots[Slot.Maximum] = initialCount;
    });
    return { event: EventHandle.adopt(CountdownEvent, found.cell, found.name), createdNew: found.createdNew };
  }

  /** The countdown of this name; `WaitHandleNotFoundError` when there is none, `WaitHandleKindError` when the name is another kind's. */
  static openExisting(name: string): CountdownEvent {
    const found = openExistingNamed(Kind.CountdownEvent, name);
    return EventHandle.adopt(CountdownEvent, found.cell, found.name);
  }

  /** The countdown of this name, or undefined when there is none (or the name is another kind's). */
  static tryOpenExisting(name: string): CountdownEvent | undefined {
    const found = tryOpenExistingNamed(Kind.CountdownEvent, name);
    return found === undefined ? undefined : EventHandle.adopt(CountdownEvent, found.cell, found.name);
  }

  /** Signals still needed. */
  get currentCount(): number {
    return Atomics.load(this.slots, Slot.State);
  }

  /** The count `reset()` returns to. */
  get initialCount(): number {
    return Atomics.load(this.slots, Slot.Maximum);
  }

  get isSet(): boolean {
    return this.currentCount === 0;
  }

  /** Registers `signalCount` signals; true when this made the event set. */
  signal(signalCount = 1): boolean {
    assertCount('signalCount', signalCount, 1);
    const slots = this.slots;
    for (;;) {
      const count = Atomics.load(slots, Slot.State);
      if (signalCount > count) {
        throw new InvalidOperationError(`Cannot signal ${signalCount} time(s): only ${count} signal(s) remain before the event is set.`);
      }
      if (Atomics.compareExchange(slots, Slot.State, count, count - signalCount) === count) {
        if (count === signalCount) this.wake();
        return count === signalCount;
      }
    }
  }

  /** Raises the count; throws `InvalidOperationError` when the event is already set. */
  addCount(signalCount = 1): void {
    if (!this.tryAddCount(signalCount)) throw new InvalidOperationError('The event is already set; addCount cannot raise a count that reached zero.');
  }

  /** Raises the count unless the event is already set (then false). */
  tryAddCount(signalCount = 1): boolean {
    assertCount('signalCount', signalCount, 1);
    const slots = this.slots;
    for (;;) {
      const count = Atomics.load(slots, Slot.State);
      if (count === 0) return false;
      if (count > 0x7fffffff - signalCount) throw new InvalidOperationError('The count would overflow.');
      if (Atomics.compareExchange(slots, Slot.State, count, count + signalCount) === count) return true;
    }
  }

  /** Starts over at `count` (default: the initial count), which becomes the new initial count. */
  reset(count = this.initialCount): void {
    assertCount('count', count, 0);
    Atomics.store(this.slots, Slot.Maximum, count);
    Atomics.store(this.slots, Slot.State, count);
    if (count === 0) this.wake();
  }

  protected tryPass(): boolean {
    return Atomics.load(this.slots, Slot.State) === 0;
  }
}

registerKind(Kind.CountdownEvent, CountdownEvent, (cell, { name }) => EventHandle.adopt(CountdownEvent, cell, name));
