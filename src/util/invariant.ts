/**
 * Internal invariants, checked where they are relied on. A failure is a bug
 * in this library, never the caller's mistake: it throws at once, loudly,
 * rather than let the pool carry on in a state nobody designed (Go's
 * "sync: inconsistent mutex state").
 *
 * @module
 */

/** Thrown when an internal invariant does not hold: a bug in runspaces. */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
  readonly code = 'ERR_RUNSPACES_INVARIANT';
}

export function invariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantError(`runspaces: internal invariant broken: ${message}`);
}
