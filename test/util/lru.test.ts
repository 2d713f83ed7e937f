import { expect, test } from 'vitest';
import { LruMap } from '../../dist/util/lru.js';

test('holds at most its capacity and drops the oldest first', () => {
  const lru = new LruMap<number, string>(4);
  const evicted: number[] = [];
  for (let i = 0; i < 10; i++) evicted.push(...lru.set(i, `v${i}`));
  expect(lru.size).toBe(4);
  expect(evicted).toEqual([0, 1, 2, 3, 4, 5]);
  expect([6, 7, 8, 9].map((k) => lru.get(k))).toEqual(['v6', 'v7', 'v8', 'v9']);
});

test('an entry used again after half a capacity of other entries survives the next evictions', () => {
  const lru = new LruMap<number, number>(8);
  for (let i = 0; i < 8; i++) lru.set(i, i);
  // Entry 0 is the oldest; five newer entries were set since, so a hit moves it to the end.
  expect(lru.get(0)).toBe(0);
  const evicted = [...lru.set(100, 100), ...lru.set(101, 101)];
  expect(evicted).toEqual([1, 2]);
  expect(lru.has(0)).toBe(true);
});

test('a key used on every call stays, however many others pass through', () => {
  const lru = new LruMap<string, number>(16);
  lru.set('hot', 1);
  for (let i = 0; i < 1000; i++) {
    lru.set(`cold${i}`, i);
    expect(lru.get('hot')).toBe(1);
  }
  expect(lru.size).toBe(16);
});

test('delete and set refresh as a map does', () => {
  const lru = new LruMap<string, number>(2);
  lru.set('a', 1);
  lru.set('a', 2);
  expect(lru.get('a')).toBe(2);
  expect(lru.delete('a')).toBe(true);
  expect(lru.get('a')).toBeUndefined();
});
