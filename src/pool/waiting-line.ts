/**
 * The pool's waiting line: calls and acquire requests, first come first
 * served, with an exact count of the entries still waiting.
 *
 * An entry that can be cancelled (it has a signal or a timeout) can settle
 * while it waits. It then stops counting at once, through its own settle
 * hook, and is dropped from the queue lazily when it reaches the head. An
 * entry that cannot be cancelled leaves the line only by being taken or
 * drained, so it costs no hook. The count is never written from outside.
 *
 * @module
 */

import { Fifo } from '../util/fifo.js';

export interface Waiter {
  readonly settled: boolean;
  /** True when it may settle while it waits (it has a signal or a timeout). */
  readonly cancellable: boolean;
  onSettle(cleanup: () => void): void;
}

export class WaitingLine<T extends Waiter> {
  readonly #queue = new Fifo<T>();
  /** Cancellable entries still in line. */
  readonly #cancellable = new WeakSet<T>();
  #count = 0;

  /** Entries still waiting (not settled, not taken). */
  get size(): number {
    return this.#count;
  }

  push(entry: T): void {
    if (this.#add(entry)) this.#queue.push(entry);
  }

  /** Puts entries back at the head, in order (work a dead runspace never started). */
  unshiftAll(entries: readonly T[]): void {
    this.#queue.unshiftAll(entries.filter((entry) => this.#add(entry)));
  }

  /** The first entry still waiting, left in line. */
  peek(): T | undefined {
    let head = this.#queue.peek();
    while (head !== undefined && head.settled) {
      this.#queue.shift();
      head = this.#queue.peek();
    }
    return head;
  }

  /** Takes the first entry still waiting out of line. */
  shift(): T | undefined {
    const head = this.peek();
    if (head === undefined) return undefined;
    this.#queue.shift();
    this.#leave(head);
    return head;
  }

  /** Takes every waiting entry out of line. */
  drain(): T[] {
    const entries = this.#queue.drain().filter((entry) => !entry.settled);
    for (const entry of entries) this.#leave(entry);
    return entries;
  }

  #add(entry: T): boolean {
    if (entry.settled) return false;
    this.#count++;
    if (entry.cancellable) {
      this.#cancellable.add(entry);
      entry.onSettle(() => this.#leave(entry));
    }
    return true;
  }

  #leave(entry: T): void {
    if (entry.cancellable && !this.#cancellable.delete(entry)) return;
    this.#count--;
  }
}
