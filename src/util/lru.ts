/**
 * A map that keeps at most `capacity` entries, dropping the least recently
 * used first. Built on `Map`'s insertion order: the oldest entry is the first.
 * Used for caches that a long-running service would otherwise grow without
 * bound (script-block sources).
 *
 * A hit moves its entry to the end only when it was last moved more than
 * half a capacity of moves ago: a cache hit on every call (the script block
 * of a loop of `invoke`s) then costs one lookup instead of a delete and an
 * insert, and an entry is still dropped only after half a capacity of other
 * entries were used since it was.
 *
 * @module
 */

interface Slot<V> {
  readonly value: V;
  movedAt: number;
}

export class LruMap<K, V> {
  readonly #entries = new Map<K, Slot<V>>();
  #moves = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#entries.size;
  }

  has(key: K): boolean {
    return this.#entries.has(key);
  }

  /** The value, marked as just used. */
  get(key: K): V | undefined {
    const slot = this.#entries.get(key);
    if (slot === undefined) return undefined;
    if (this.#moves - slot.movedAt > this.capacity / 2) {
      this.#entries.delete(key);
      this.#entries.set(key, slot);
      slot.movedAt = ++this.#moves;
    }
    return slot.value;
  }

  /** Adds or refreshes an entry; returns the keys dropped to make room. */
  set(key: K, value: V): K[] {
    this.#entries.delete(key);
    this.#entries.set(key, { value, movedAt: ++this.#moves });
    const evicted: K[] = [];
    while (this.#entries.size > this.capacity) {
      const oldest = this.#entries.keys().next().value as K;
      this.#entries.delete(oldest);
      evicted.push(oldest);
    }
    return evicted;
  }

  delete(key: K): boolean {
    return this.#entries.delete(key);
  }
}
