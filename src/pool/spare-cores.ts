/**
 * Whether other processes leave this one the cores it needs, measured while
 * runspaces that may poll are alive, and published through the spin gate
 * (protocol/spin-gate.ts).
 *
 * A runspace polling for its next call holds a core. That is free when a core
 * would otherwise sit idle or run this process's own threads, and costly when
 * another process keeps the machine busy: on a 2-core machine with one core
 * taken by another process, the poll holds the one core left, the caller's
 * thread cannot run to send the call the poll waits for, and each awaited
 * call became 1.5× slower than with no polling at all (decision 0004).
 *
 * So the main thread measures what other processes leave: idle time of every
 * core (`os.cpus()`, about 50 µs, every 100 ms) plus this process's own CPU
 * time (`process.cpuUsage()`, every thread, polling included), per unit of
 * wall time. Polling is allowed while that averages at least 1.5 cores: room
 * for the polling runspace and the thread that sends it work. This
 * process's own load does not close the gate: runspaces busy with a parallel
 * loop lose more to sleeping between chunks than polling costs them
 * (measured on a CPU-bound loop: 1.81× a plain loop with the gate counting
 * them, 1.87× without). Like Go's scheduler, a single-core machine never
 * polls.
 *
 * @module
 */

import { availableParallelism, cpus } from 'node:os';
import { SPIN_GATE_SLOTS, SpinGateSlot } from '../protocol/spin-gate.js';

const SAMPLE_EVERY_MS = 100;
/**
 * Cores other processes must leave free to allow polling. Measured on 2
 * cores, awaited calls one after another: about 2.0 on an idle machine, 1.0
 * with one core kept busy by another process.
 */
const FREE_CORES_TO_POLL = 1.5;

interface Reading {
  readonly idleMs: number;
  readonly ownCpuMs: number;
  readonly at: number;
}

let gate: Int32Array | undefined;
let holders = 0;
let timer: NodeJS.Timeout | undefined;
let last: Reading | undefined;
/** Smoothed free cores: idle time comes in 10 ms ticks, so one sample alone is noisy. */
let free = Infinity;

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
  free = Infinity;
  last = reading();
  timer = setInterval(sample, SAMPLE_EVERY_MS);
  timer.unref();
}

function stop(): void {
  clearInterval(timer);
  timer = undefined;
  last = undefined;
}

function reading(): Reading {
  let idleMs = 0;
  for (const cpu of cpus()) idleMs += cpu.times.idle;
  const own = process.cpuUsage();
  return { idleMs, ownCpuMs: (own.user + own.system) / 1000, at: performance.now() };
}

function sample(): void {
  const now = reading();
  const before = last!;
  last = now;
  free = nextFreeCores(free, { idleMs: now.idleMs - before.idleMs, ownCpuMs: now.ownCpuMs - before.ownCpuMs, wallMs: now.at - before.at });
  Atomics.store(gate!, SpinGateSlot.Allowed, pollingAllowed(free) ? 1 : 0);
}

/**
 * The smoothed cores other processes left free after one sample period: idle
 * core time plus this process's CPU time, per unit of wall time, averaged
 * with the previous value (`Infinity` before the first sample).
 */
export function nextFreeCores(previous: number, period: { readonly idleMs: number; readonly ownCpuMs: number; readonly wallMs: number }): number {
  if (period.wallMs <= 0) return previous;
  const measured = Math.max(0, period.idleMs + period.ownCpuMs) / period.wallMs;
  return previous === Infinity ? measured : (previous + measured) / 2;
}

export const pollingAllowed = (freeCores: number): boolean => freeCores >= FREE_CORES_TO_POLL;
