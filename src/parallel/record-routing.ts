/**
 * Where a loop's stream records go: progress to `onProgress` when given,
 * everything else (and progress without `onProgress`) to `onRecord`, and to
 * the pool's `record` event when the loop has no handler, as `invoke` does.
 *
 * @module
 */

import type { StreamRecord } from '../protocol/stream-records.js';
import type { NormalizedLoopOptions, ProgressRecord } from './options.js';

export function routeRecord(
  record: StreamRecord,
  options: Pick<NormalizedLoopOptions, 'onRecord' | 'onProgress'>,
  poolRecord: (record: StreamRecord) => void,
): void {
  try {
    if (record.stream === 'progress' && options.onProgress !== undefined) options.onProgress(record as ProgressRecord);
    else if (options.onRecord !== undefined) options.onRecord(record);
    else poolRecord(record);
  } catch (error) {
    // A throwing handler must not break the loop's bookkeeping; report it as
    // an uncaught exception, as an event listener's would be.
    queueMicrotask(() => {
      throw error;
    });
  }
}
