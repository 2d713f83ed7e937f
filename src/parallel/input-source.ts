/**
 * The input of a parallel loop, pulled only as fast as the loop processes it.
 *
 * Arrays are sliced; other synchronous iterables are pulled on demand, a
 * chunk at a time. Asynchronous iterables (and Node streams in object mode,
 * which are asynchronous iterables) are read one `next()` at a time into a
 * small buffer that never holds more than the loop asked for, so a slow
 * producer's items start as they arrive and a fast one's are still sent
 * several per message.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js';

/** What a loop can run over. */
export type LoopInput<T> = readonly T[] | Iterable<T> | AsyncIterable<T>;

export class InputSource<T> {
  readonly #array: readonly T[] | undefined;
  #arrayPos = 0;
  readonly #sync: Iterator<T> | undefined;
  readonly #async: AsyncIterator<T> | undefined;
  #buffer: T[] = [];
  #wanted = 0;
  #reading = false;
  #ended = false;
  #closed = false;
  /** What the input threw, if it did. */
  error: unknown;
  #failed = false;
  /** Called when an asynchronous input produced items or ended. */
  onAvailable: () => void = () => {};

  constructor(input: LoopInput<T>) {
    if (typeof input === 'string') {
      throw new InvalidArgumentError('input', 'a string is one value, not a list of items; wrap it in an array');
    }
    if (Array.isArray(input)) this.#array = input;
    else if (input !== null && typeof input === 'object' && typeof (input as AsyncIterable<T>)[Symbol.asyncIterator] === 'function') {
      this.#async = (input as AsyncIterable<T>)[Symbol.asyncIterator]();
    } else if (input !== null && typeof input === 'object' && typeof (input as Iterable<T>)[Symbol.iterator] === 'function') {
      this.#sync = (input as Iterable<T>)[Symbol.iterator]();
    } else {
      throw new InvalidArgumentError('input', 'expected an array, an iterable, an async iterable, or a readable stream in object mode');
    }
  }

  /** Items left, when the input says (arrays do); undefined otherwise. */
  get remainingKnown(): number | undefined {
    return this.#array === undefined ? undefined : this.#array.length - this.#arrayPos;
  }

  /** True when every item was taken (or the input failed or was closed). */
  get exhausted(): boolean {
    if (this.#failed || this.#closed) return true;
    if (this.#array !== undefined) return this.#arrayPos >= this.#array.length;
    return this.#ended && this.#buffer.length === 0;
  }

  get failed(): boolean {
    return this.#failed;
  }

  /**
   * Up to `max` items available now. An asynchronous input returns what it
   * has buffered and starts reading ahead up to `max` items in total.
   */
  take(max: number): T[] {
    if (this.#failed || this.#closed) return [];
    if (this.#array !== undefined) {
      const items = this.#array.slice(this.#arrayPos, this.#arrayPos + max);
      this.#arrayPos += items.length;
      return items;
    }
    if (this.#sync !== undefined) return this.#takeSync(max);
    const items = this.#buffer.length <= max ? this.#buffer : this.#buffer.slice(0, max);
    this.#buffer = items === this.#buffer ? [] : this.#buffer.slice(max);
    this.#wanted = Math.max(this.#wanted, max);
    void this.#readAhead();
    return items;
  }

  /** Stops reading and lets the input clean up (a generator's `finally` runs). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#buffer = [];
    try {
      if (!this.#ended) {
        void this.#sync?.return?.();
        void this.#async?.return?.()?.then(undefined, () => {});
      }
    } catch {
      // An iterator whose return() throws has nothing left to release.
    }
  }

  #takeSync(max: number): T[] {
    const items: T[] = [];
    if (this.#ended) return items;
    try {
      while (items.length < max) {
        const next = iteratorResult(this.#sync!.next());
        if (next.done) {
          this.#ended = true;
          break;
        }
        items.push(next.value);
      }
    } catch (error) {
      this.#fail(error);
    }
    return items;
  }

  async #readAhead(): Promise<void> {
    if (this.#reading) return;
    this.#reading = true;
    try {
      while (!this.#ended && !this.#closed && this.#buffer.length < this.#wanted) {
        const next = iteratorResult(await this.#async!.next());
        if (this.#closed) return;
        if (next.done) {
          this.#ended = true;
        } else {
          this.#buffer.push(next.value);
        }
        this.onAvailable();
      }
    } catch (error) {
      this.#fail(error);
      this.onAvailable();
    } finally {
      this.#reading = false;
    }
  }

  #fail(error: unknown): void {
    this.#failed = true;
    this.error = error;
    this.#buffer = [];
  }
}

/** An iterator's `next()` must return an object, as `for...of` insists; anything else ends the loop with a `TypeError`. */
function iteratorResult<T>(result: IteratorResult<T>): IteratorResult<T> {
  if (result === null || (typeof result !== 'object' && typeof result !== 'function')) {
    throw new TypeError(`Iterator result ${String(result)} is not an object`);
  }
  return result;
}
