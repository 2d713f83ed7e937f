import { expect, test } from 'vitest';
import { CELL_INTS } from '../../dist/sync/arena.js';

// arena.ts's Slot is a const enum, gone at run time: its values, as documented there.
const Slot = { State: 0, Recursion: 2, Abandoned: 3 } as const;
import { lockOwnedBlocking, OWNED, recoverOwned, unlockOwned } from '../../dist/sync/owner-word-lock.js';

const cell = (): Int32Array => new Int32Array(new SharedArrayBuffer(CELL_INTS * 4));

test('the lock word names its owner; a dead owner is recognised with or without waiters', () => {
  const dead = 7;
  for (const word of [dead << 1, (dead << 1) | 1]) {
    const slots = cell();
    slots[Slot.State] = word;
    slots[Slot.Recursion] = 3;
    expect(recoverOwned(slots, dead + 1)).toBe(false);
    expect(slots[Slot.State]).toBe(word);
    expect(recoverOwned(slots, dead)).toBe(true);
    expect([slots[Slot.State], slots[Slot.Abandoned], slots[Slot.Recursion]]).toEqual([0, 1, 0]);
  }
});

test('a free lock is not recovered for anyone', () => {
  expect(recoverOwned(cell(), 1)).toBe(false);
});

test('a waiter that found the lock held takes it, marked waited, once freed; unlock clears the word', () => {
  const slots = cell();
  slots[Slot.State] = 5 << 1;
  // A deadline already past: the waiter gives up after its spin and one look.
  expect(lockOwnedBlocking(slots, performance.now())).toBe(false);
  expect(slots[Slot.State]).toBe((5 << 1) | 1);
  slots[Slot.State] = 0;
  expect(lockOwnedBlocking(slots, performance.now() + 1000)).toBe(true);
  expect(slots[Slot.State] >>> 1).toBe(OWNED >>> 1);
  unlockOwned(slots);
  expect(slots[Slot.State]).toBe(0);
});
