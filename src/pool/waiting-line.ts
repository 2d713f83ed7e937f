/**
 * The pool's waiting line: calls and acquire requests, first come first
 * served, with an exact count of the entries still waiting.
 *
 * An entry can settle while it waits (cancelled, timed out). It then stops
 * counting at once, through its own settle hook, and is dropped from the
 * queue lazily when it reaches the head. The count is never written by hand.
 *
 * @module
 */

import { Fifo } from '../util/fifo.js';

export interface Waiter {
  readonly settled: boolean;
  onSettle(cleanup: () => void): void;
}

export class WaitingLine<T extends Waiter> {
  readonly #queue = new Fifo<T>();
  readonly #waiting = new Set<T>();

  /** Entries still waiting (not settled, not taken). */
  get size(): number {
    return this.#waiting.size;
  }

  push(entry: T): void {
    this.#add(entry);
    this.#queue.push(entry);
  }

  /** Puts entries back at the head, in order (work a dead runspace never started). */
  unshiftAll(entries: readonly T[]): void {
    for (const entry of entries) this.#add(entry);
    this.#queue.unshiftAll(entries);
  }

  /** The first entry still waiting, left in line. */
  peek(): T | undefined {
    let head = this.#queue.peek();
    while (head !== undefined && !this.#waiting.has(head)) {
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
    this.#waiting.delete(head);
    return head;
  }

  /** Takes every waiting entry out of line. */
  drain(): T[] {
    const entries = [...this.#queue.drain()].filter((entry) => this.#waiting.has(entry));
    this.#waiting.clear();
    return entries;
  }

  #add(entry: T): void {
    if (entry.settled || this.#waiting.has(entry)) return;
    this.#waiting.add(entry);
    entry.onSettle(() => this.#waiting.delete(entry));
  }
}
