import { expect, test } from 'vitest';
import { Fifo } from '../../dist/util/fifo.js';

test('the fifo keeps order through pushes, shifts, pops and put-backs at scale', () => {
  const fifo = new Fifo<number>();
  const model: number[] = [];
  let next = 0;
  for (let round = 0; round < 20_000; round++) {
    const op = (round * 7919) % 10;
    if (op < 5) { fifo.push(next); model.push(next++); }
    else if (op < 8) expect(fifo.shift()).toBe(model.shift());
    else if (op < 9) expect(fifo.pop()).toBe(model.pop());
    else {
      const back = [next++, next++];
      fifo.unshiftAll(back);
      model.unshift(...back);
    }
    expect(fifo.length).toBe(model.length);
  }
  expect(fifo.drain()).toEqual(model);
  expect(fifo.length).toBe(0);
});
