/**
 * The pool's public states and events, shared by the pool core that raises
 * them and the `RunspacePool` facade users subscribe on.
 *
 * @module
 */

import type { RunspaceOpenError } from '../errors.js';
import type { StreamRecord } from '../protocol/stream-records.js';

/** The states of a pool, as PowerShell's `RunspacePoolState`. */
export type RunspacePoolState = 'BeforeOpen' | 'Opening' | 'Opened' | 'Closing' | 'Closed' | 'Broken';

/** What the pool's `stateChanged` event carries: the state left, the state entered, and why when it broke. */
export interface PoolStateChange {
  readonly previous: RunspacePoolState;
  readonly state: RunspacePoolState;
  /** Why the pool broke, for `Broken`. */
  readonly reason?: Error;
}

/** What the pool's `runspaceClosed` event carries: which runspace ended, how, and whether the pool meant it. */
export interface RunspaceClosedInfo {
  readonly runspaceId: number;
  readonly exitCode: number;
  readonly reason: string;
  /** True when the pool closed it (trimmed, recycled, pool closing); false when it died. */
  readonly intended: boolean;
}

/** Events of a `RunspacePool`. */
export interface RunspacePoolEvents {
  stateChanged: [change: PoolStateChange];
  /** Stream records of calls made without `onRecord`, and of startup scripts. */
  record: [record: StreamRecord];
  runspaceOpened: [runspaceId: number];
  runspaceClosed: [info: RunspaceClosedInfo];
  /** A module or startup script failed in a runspace (with `throwOnOpenError: false`, it serves anyway). */
  runspaceOpenError: [error: RunspaceOpenError];
  /** The waiting line emptied after calls waited in it: room again below `maxQueue`. */
  drain: [];
}

/** Raises one of the pool's events. */
export type EmitPoolEvent = <K extends keyof RunspacePoolEvents>(event: K, ...args: RunspacePoolEvents[K]) => void;

/** Options of `pool.acquire()`. */
export interface AcquireOptions {
  readonly signal?: AbortSignal;
  /** Milliseconds to wait for a runspace before rejecting with `TimeoutError`; `Infinity`: no limit. */
  readonly timeout?: number;
}
