/**
 * Every synchronization primitive, in one import: loading this module
 * registers each kind, so any of them can cross threads.
 *
 * @module
 */

export { AutoResetEvent } from './auto-reset-event.js';
export { Barrier } from './barrier.js';
export { CountdownEvent } from './countdown-event.js';
export { ManualResetEvent } from './manual-reset-event.js';
export { Mutex } from './mutex.js';
export { ReaderWriterLock } from './reader-writer-lock.js';
export { Semaphore } from './semaphore.js';
