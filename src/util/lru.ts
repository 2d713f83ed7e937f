/**
 * A map that keeps at most `capacity` entries, dropping the least recently
 * used first. Built on `Map`'s insertion order: a hit moves its entry to the
 * end, the oldest entry is the first. Used for caches that a long-running
 * service would otherwise grow without bound (script-block sources).
 *
 * @module
 */

export class LruMap<K, V> {
  readonly #entries = new Map<K, V>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#entries.size;
  }

  has(key: K): boolean {
    return this.#entries.has(key);
  }

  /** The value, marked as just used. */
  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value === undefined) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  /** Adds or refreshes an entry; returns the keys dropped to make room. */
  set(key: K, value: V): K[] {
    this.#entries.delete(key);
    this.#entries.set(key, value);
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
