/**
 * How many items a parallel loop sends per message.
 *
 * A message between threads costs tens of microseconds; a trivial item costs
 * tens of nanoseconds. So items travel in chunks sized from a running
 * estimate of one item's run time, aiming at a few milliseconds of work per
 * chunk: enough that the main thread's cost per chunk (about 50 µs, taken
 * from the same two cores the runspaces use) stays near 1%, short enough
 * that outputs stream steadily. Outputs of a chunk arrive together, so an
 * item far slower than its estimate holds back the outputs of the items
 * before it in its chunk; the estimate keeps that to a few milliseconds'
 * worth of quick items. (Measured on 2 cores with ~1.7 ms items: 1 ms chunks,
 * one item each, reached 1.7–1.8× a plain loop; 4 ms chunks 1.8–1.9×, the
 * same as two bare workers that never exchange a message.)
 * Until the first chunk reports back, chunks hold one item, so slow items
 * spread one per runspace from the start. When the input's length is known,
 * a chunk never takes more than an even share of what is left, so the last
 * items still spread over every runspace.
 *
 * @module
 */

/** Work per chunk the loop aims for. */
export const TARGET_CHUNK_NS = 4_000_000;
/** Upper bound on items per chunk, so one message never grows huge. */
export const MAX_CHUNK_ITEMS = 8192;

const SMOOTHING = 0.3;

export class ChunkSizer {
  #itemNs = 0;
  #known = false;

  /** Records a chunk's run: `items` items in `runNs` nanoseconds. */
  record(items: number, runNs: number): void {
    if (items <= 0) return;
    const sample = runNs / items;
    this.#itemNs = this.#known ? this.#itemNs + (sample - this.#itemNs) * SMOOTHING : sample;
    this.#known = true;
  }

  /** The estimate of one item's run time in nanoseconds, once known. */
  get itemNs(): number | undefined {
    return this.#known ? this.#itemNs : undefined;
  }

  /** Items for the next chunk, given how many lanes share what is left (when known). */
  next(lanes: number, remainingKnown: number | undefined): number {
    if (!this.#known) return 1;
    let size = Math.floor(TARGET_CHUNK_NS / Math.max(this.#itemNs, 1));
    size = Math.max(1, Math.min(MAX_CHUNK_ITEMS, size));
    if (remainingKnown !== undefined) size = Math.min(size, Math.max(1, Math.ceil(remainingKnown / lanes)));
    return size;
  }
}
