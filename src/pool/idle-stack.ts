/**
 * Idle runspaces, last in first out: the runspace used most recently is used
 * next (its caches are warm), and the ones at the bottom stay idle long enough
 * for the idle timer to trim them.
 */
export class IdleStack<T> {
  readonly #items: T[] = [];

  get length(): number {
    return this.#items.length;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  pop(): T | undefined {
    return this.#items.pop();
  }

  /** Removes `item` wherever it is; true when it was there. */
  remove(item: T): boolean {
    const index = this.#items.indexOf(item);
    if (index === -1) return false;
    this.#items.splice(index, 1);
    return true;
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.#items[Symbol.iterator]();
  }
}
