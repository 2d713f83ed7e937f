/**
 * Whether the machine has a core to spare, measured while runspaces that may
 * poll are alive, and published through the spin gate (protocol/spin-gate.ts).
 *
 * A runspace polling for its next call holds a core. That is free when a core
 * would otherwise sit idle and costly when another thread (the caller's, or
 * another process's) needs it: on a 2-core machine with one core busy, a
 * polling runspace made each awaited call 1.5× slower than not polling at all
 * (decision 0004). So polling is allowed only while the cores left idle, plus
 * the time runspaces spent polling (which would have been idle without it),
 * add up to at least half a core on average.
 * Idle time comes from `os.cpus()` (about 50 µs, every 100 ms, on the main
 * thread), which every platform Node runs on provides. Like Go's scheduler,
 * a single-core machine never polls.
 *
 * @module
 */

import { availableParallelism, cpus } from 'node:os';
import { SPIN_GATE_SLOTS, SpinGateSlot } from '../protocol/spin-gate.js';

const SAMPLE_EVERY_MS = 100;
/**
 * Spare cores needed to allow polling. Measured on 2 cores, awaited calls one
 * after another: about 1.2 spare with polling and 1.0 without on an idle
 * machine, 0 to 0.1 with one core kept busy by another process.
 */
const SPARE_CORES_TO_POLL = 0.5;

let gate: Int32Array | undefined;
let holders = 0;
let timer: NodeJS.Timeout | undefined;
let last: { readonly idleMs: number; readonly polledMicros: number; readonly at: number } | undefined;
/** Smoothed spare cores: ticks of idle time are 10 ms coarse, so one sample alone is noisy. */
let spare = Infinity;

/** The gate's buffer, for a runspace's boot data. */
export function spinGate(): SharedArrayBuffer {
  gate ??= new Int32Array(new SharedArrayBuffer(SPIN_GATE_SLOTS * Int32Array.BYTES_PER_ELEMENT));
  return gate.buffer as SharedArrayBuffer;
}

/**
 * Keeps the gate up to date while a runspace that may poll lives.
 * @returns the release, to call once when it has exited.
 */
export function holdSpinGate(): () => void {
  spinGate();
  if (holders++ === 0) start();
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holders === 0) stop();
  };
}

function start(): void {
  if (availableParallelism() < 2) {
    Atomics.store(gate!, SpinGateSlot.Allowed, 0);
    return;
  }
  // Optimistic until the first measurement: a wrong guess costs at most one sample period.
  Atomics.store(gate!, SpinGateSlot.Allowed, 1);
  spare = Infinity;
  last = reading();
  timer = setInterval(sample, SAMPLE_EVERY_MS);
  timer.unref();
}

function stop(): void {
  clearInterval(timer);
  timer = undefined;
  last = undefined;
}

function reading(): { idleMs: number; polledMicros: number; at: number } {
  let idleMs = 0;
  for (const cpu of cpus()) idleMs += cpu.times.idle;
  return { idleMs, polledMicros: Atomics.load(gate!, SpinGateSlot.PolledMicros), at: performance.now() };
}

function sample(): void {
  const now = reading();
  const before = last!;
  last = now;
  spare = nextSpareCores(spare, {
    idleMs: now.idleMs - before.idleMs,
    polledMs: ((now.polledMicros - before.polledMicros) >>> 0) / 1000,
    wallMs: now.at - before.at,
  });
  Atomics.store(gate!, SpinGateSlot.Allowed, pollingAllowed(spare) ? 1 : 0);
}

/**
 * The smoothed spare cores after one sample period: idle core time plus
 * runspaces' polling time, per unit of wall time, averaged with the previous
 * value (`Infinity` before the first sample).
 */
export function nextSpareCores(previous: number, period: { readonly idleMs: number; readonly polledMs: number; readonly wallMs: number }): number {
  if (period.wallMs <= 0) return previous;
  const measured = Math.max(0, period.idleMs + period.polledMs) / period.wallMs;
  return previous === Infinity ? measured : (previous + measured) / 2;
}

export const pollingAllowed = (spareCores: number): boolean => spareCores >= SPARE_CORES_TO_POLL;
