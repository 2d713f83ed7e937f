/**
 * A contention report as a person reads it: an aligned terminal table, or a
 * markdown table for docs, each with the machine and settings above it.
 *
 * @module
 */

import { LOCK_LABELS, type ContentionReport, type MachineInfo } from './contention.js';

export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return 'n/a';
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k/s`;
  return `${perSecond.toFixed(0)}/s`;
}

export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return 'n/a';
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(1)} µs`;
  return `${ns.toFixed(0)} ns`;
}

export function machineLine(machine: MachineInfo): string {
  return `${machine.cores} cores (${machine.cpu}), Node ${machine.node}, ${machine.platform}`;
}

function settingsLine(report: ContentionReport): string {
  const o = report.options;
  return `each point: ${o.durationMs} ms, ${o.repeats} run${o.repeats === 1 ? '' : 's'}, medians shown; latency is the wait in acquire`;
}

const HEADERS = ['lock', 'threads', 'critical', 'throughput', 'fairness', 'p50', 'p99', 'max', 'handoffs'] as const;

function rows(report: ContentionReport): string[][] {
  return report.points.map((point) => {
    const m = point.median;
    return [
      LOCK_LABELS[point.lock],
      String(point.threads),
      formatNs(point.criticalNs),
      formatRate(m.throughput),
      Number.isFinite(m.fairness) ? m.fairness.toFixed(3) : 'n/a',
      formatNs(m.p50Ns),
      formatNs(m.p99Ns),
      formatNs(m.maxNs),
      Number.isFinite(m.handoffRate) ? `${(m.handoffRate * 100).toFixed(1)}%` : 'n/a',
    ];
  });
}

function notes(report: ContentionReport): string[] {
  const lines = report.skipped.map((s) => `skipped ${s.lock}: ${s.reason}`);
  if (report.points.some((p) => p.lock === 'async-mutex' || p.lock === 'mutex-async')) {
    lines.push('async flows: "threads" is the number of async flows in one runspace (an in-thread lock cannot be shared between threads)');
  }
  return lines;
}

export function terminalTable(report: ContentionReport): string {
  const body = rows(report);
  const widths = HEADERS.map((header, i) => Math.max(header.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [
    `runspaces bench contention: ${machineLine(report.machine)}`,
    settingsLine(report),
    '',
    line(HEADERS),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
    ...(notes(report).length > 0 ? ['', ...notes(report).map((n) => `note: ${n}`)] : []),
  ].join('\n');
}

export function markdownTable(report: ContentionReport): string {
  return [
    `${machineLine(report.machine)}; ${settingsLine(report)}.`,
    '',
    `| ${HEADERS.join(' | ')} |`,
    `|${HEADERS.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows(report).map((row) => `| ${row.join(' | ')} |`),
    ...(notes(report).length > 0 ? ['', ...notes(report).map((n) => `Note: ${n}.`)] : []),
  ].join('\n');
}
