/**
 * The one phase a runspace is in, as the pool sees it, and the moves between
 * phases that are legal. The phase replaces a set of flags that could
 * disagree (acquired and idle, retiring and schedulable); a move the table
 * does not allow throws an {@link InvariantError} at once.
 *
 * ```
 *             ready               dispatch                 results drained
 *   opening ─────────► idle ◄──────────────────► busy ◄─ (pipelined batches stay busy)
 *                       │  ▲
 *            acquire()  │  │ release(), nothing running
 *                       ▼  │
 *                    acquired ──release() with calls running──► releasing ──drained──► idle
 *
 *   dedicated: opened for one `useNewRunspace` call; never idle, never counted.
 *   retiring:  the pool ended it (trim, recycle, close); exit pending.
 *   exited:    the thread is gone. Every phase may die; every live phase may retire.
 * ```
 *
 * @module
 */

import { invariant } from '../util/invariant.js';

export type RunspacePhase = 'opening' | 'idle' | 'busy' | 'acquired' | 'releasing' | 'dedicated' | 'retiring' | 'exited';

const LEGAL: Readonly<Record<RunspacePhase, readonly RunspacePhase[]>> = {
  opening: ['idle', 'retiring', 'exited'],
  idle: ['busy', 'acquired', 'retiring', 'exited'],
  busy: ['idle', 'retiring', 'exited'],
  acquired: ['releasing', 'idle', 'retiring', 'exited'],
  releasing: ['idle', 'retiring', 'exited'],
  dedicated: ['retiring', 'exited'],
  retiring: ['exited'],
  exited: [],
};

export function canMove(from: RunspacePhase, to: RunspacePhase): boolean {
  return LEGAL[from].includes(to);
}

/** Throws unless `from → to` is a legal move. */
export function assertMove(from: RunspacePhase, to: RunspacePhase, runspaceId: number): void {
  invariant(canMove(from, to), `runspace ${runspaceId} cannot move from '${from}' to '${to}'`);
}

/** Phases in which the pool may send work it scheduled (not a caller's pinned call). */
export function isSchedulable(phase: RunspacePhase): boolean {
  return phase === 'idle' || phase === 'busy';
}

/** Phases that count against `minRunspaces` and `maxRunspaces`. */
export function isCounted(phase: RunspacePhase): boolean {
  return phase !== 'dedicated' && phase !== 'retiring' && phase !== 'exited';
}
