/**
 * Handles on named cells: every object viewing a cell of the arena counts
 * (see arena.ts), and stops counting when disposed or collected, whichever
 * comes first. Unnamed cells are their own buffers: the garbage collector
 * frees them, nothing is counted.
 *
 * @module
 */

import { ObjectDisposedError } from '../errors.js';
import { hasOwnBuffer, releaseNamed, retainNamed, type Cell } from './arena.js';

/** Objects collected without `dispose()` give their handle back here. */
const collected = new FinalizationRegistry<Cell>((cell) => releaseNamed(cell));

/**
 * A primitive's disposal state and, for a named cell, its counted handle.
 * The handle counted when the cell was looked up (or sent here) belongs to
 * the object from now on.
 */
export class HandleState {
  #disposed = false;

  constructor(owner: object, readonly cell: Cell, readonly kindName: string) {
    if (!hasOwnBuffer(cell)) collected.register(owner, cell, this);
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Throws `ObjectDisposedError` once disposed. */
  assertLive(): void {
    if (this.#disposed) throw new ObjectDisposedError(this.kindName);
  }

  /** A copy is about to cross to another thread: it will own a handle of its own. */
  retainForCrossing(): void {
    this.assertLive();
    if (!hasOwnBuffer(this.cell)) retainNamed(this.cell);
  }

  /** Disposes once; later calls do nothing. A named cell's last handle frees the name. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (!hasOwnBuffer(this.cell) && collected.unregister(this)) releaseNamed(this.cell);
  }
}
