/**
 * The spin gate: one small shared buffer per process through which the main
 * thread tells every runspace whether polling for the next call costs
 * another process a core (decision 0004, pool/spare-cores.ts).
 *
 * @module
 */

export const enum SpinGateSlot {
  /** 1 while polling for the next call takes no other process's core, 0 otherwise. */
  Allowed = 0,
}

export const SPIN_GATE_SLOTS = 1;
