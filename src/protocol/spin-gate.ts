/**
 * The spin gate: one small shared buffer per process through which the main
 * thread tells every runspace whether the machine has a core to spare for
 * polling, and runspaces report how long they polled (decision 0004).
 *
 * @module
 */

export const enum SpinGateSlot {
  /** 1 while polling for the next call costs nobody a core, 0 otherwise. */
  Allowed = 0,
  /** Microseconds runspaces spent polling, wrapping at 2^32 (read as a difference). */
  PolledMicros = 1,
}

export const SPIN_GATE_SLOTS = 2;
