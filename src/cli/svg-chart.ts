/**
 * A contention report as a picture: for each critical section length, two
 * line charts side by side, throughput and p99 acquire latency (on a log
 * scale: locks differ by orders of magnitude) against the thread count, one
 * line per lock. Plain SVG with its own axes, ticks and
 * legend: it opens in any browser and reads without the data.
 *
 * @module
 */

import { LOCK_LABELS, type ContentionReport, type LockKind } from './contention.js';
import { formatNs, formatRate, machineLine } from './contention-report.js';

const PANEL_WIDTH = 460;
const PANEL_HEIGHT = 280;
const MARGIN = { top: 36, right: 28, bottom: 44, left: 72 };
const ROW_GAP = 40;
const HEADER = 56;
const LEGEND_ROW = 20;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Round tick steps (1, 2, 5 × 10^k) covering 0..max in about five steps. */
function ticks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const result: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) result.push(v);
  if (result[result.length - 1]! < max) result.push(result[result.length - 1]! + step);
  return result;
}

interface Series {
  readonly lock: LockKind;
  readonly color: string;
  readonly points: readonly (readonly [threads: number, value: number])[];
}

/** Powers of ten around the values: latencies span several of them. */
function logTicks(values: readonly number[]): number[] {
  const positive = values.filter((v) => Number.isFinite(v) && v > 0);
  if (positive.length === 0) return [1, 10];
  const low = Math.floor(Math.log10(Math.min(...positive)));
  const high = Math.max(low + 1, Math.ceil(Math.log10(Math.max(...positive))));
  const result: number[] = [];
  for (let e = low; e <= high; e++) result.push(10 ** e);
  return result;
}

function panel(
  x0: number,
  y0: number,
  title: string,
  series: readonly Series[],
  threads: readonly number[],
  format: (v: number) => string,
  scale: 'linear' | 'log',
): string {
  const width = PANEL_WIDTH - MARGIN.left - MARGIN.right;
  const height = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const values = series.flatMap((s) => s.points.map(([, v]) => v));
  const yTicks = scale === 'log' ? logTicks(values) : ticks(Math.max(0, ...values.filter(Number.isFinite)));
  const yMin = yTicks[0]!;
  const yMax = yTicks[yTicks.length - 1]!;
  // Thread counts are placed evenly (1, 2, 4, 8 would crowd on a linear axis).
  const xAt = (t: number): number => {
    const i = threads.indexOf(t);
    return threads.length === 1 ? width / 2 : (i / (threads.length - 1)) * width;
  };
  const yAt = scale === 'log'
    ? (v: number): number => height - ((Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * height
    : (v: number): number => height - (v / yMax) * height;
  const parts: string[] = [`<g transform="translate(${x0 + MARGIN.left},${y0 + MARGIN.top})">`];
  parts.push(`<text x="${width / 2}" y="-14" text-anchor="middle" font-size="13" font-weight="bold">${escape(title)}</text>`);
  for (const tick of yTicks) {
    const y = yAt(tick).toFixed(1);
    parts.push(`<line x1="0" x2="${width}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="-8" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11">${escape(format(tick))}</text>`);
  }
  for (const t of threads) {
    const x = xAt(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${height}" y2="${height + 5}" stroke="#333"/>`);
    parts.push(`<text x="${x}" y="${height + 18}" text-anchor="middle" font-size="11">${t}</text>`);
  }
  parts.push(`<line x1="0" x2="${width}" y1="${height}" y2="${height}" stroke="#333"/>`);
  parts.push(`<line x1="0" x2="0" y1="0" y2="${height}" stroke="#333"/>`);
  parts.push(`<text x="${width / 2}" y="${height + 36}" text-anchor="middle" font-size="12">threads</text>`);
  for (const s of series) {
    const finite = s.points.filter(([, v]) => Number.isFinite(v));
    const path = finite.map(([t, v], i) => `${i === 0 ? 'M' : 'L'}${xAt(t).toFixed(1)},${yAt(v).toFixed(1)}`).join(' ');
    if (finite.length > 1) parts.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const [t, v] of finite) {
      parts.push(`<circle cx="${xAt(t).toFixed(1)}" cy="${yAt(v).toFixed(1)}" r="3.5" fill="${s.color}"><title>${escape(`${LOCK_LABELS[s.lock]}, ${t} threads: ${format(v)}`)}</title></circle>`);
    }
  }
  parts.push('</g>');
  return parts.join('\n');
}

export function contentionSvg(report: ContentionReport): string {
  const criticals = [...new Set(report.points.map((p) => p.criticalNs))];
  const threads = [...new Set(report.points.map((p) => p.threads))].sort((a, b) => a - b);
  const locks = [...new Set(report.points.map((p) => p.lock))];
  const color = (lock: LockKind): string => COLORS[locks.indexOf(lock) % COLORS.length]!;
  const legendHeight = LEGEND_ROW * Math.ceil(locks.length / 3);
  const width = PANEL_WIDTH * 2;
  const height = HEADER + legendHeight + criticals.length * (PANEL_HEIGHT + ROW_GAP);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="16" y="24" font-size="16" font-weight="bold">runspaces bench contention</text>`,
    `<text x="16" y="44" font-size="12" fill="#444">${escape(`${machineLine(report.machine)}; ${report.options.durationMs} ms per point, median of ${report.options.repeats}`)}</text>`,
  ];
  locks.forEach((lock, i) => {
    const x = 16 + (i % 3) * 300;
    const y = HEADER + 8 + Math.floor(i / 3) * LEGEND_ROW;
    parts.push(`<line x1="${x}" x2="${x + 24}" y1="${y}" y2="${y}" stroke="${color(lock)}" stroke-width="3"/>`);
    parts.push(`<text x="${x + 30}" y="${y}" dominant-baseline="middle" font-size="12">${escape(LOCK_LABELS[lock])}</text>`);
  });
  criticals.forEach((criticalNs, row) => {
    const y0 = HEADER + legendHeight + row * (PANEL_HEIGHT + ROW_GAP);
    const seriesOf = (pick: (m: ContentionReport['points'][number]['median']) => number): Series[] =>
      locks.map((lock) => ({
        lock,
        color: color(lock),
        points: threads.flatMap((t) => {
          const point = report.points.find((p) => p.lock === lock && p.threads === t && p.criticalNs === criticalNs);
          return point === undefined ? [] : [[t, pick(point.median)] as const];
        }),
      }));
    const section = criticalNs === 0 ? 'empty critical section' : `critical section ${formatNs(criticalNs)}`;
    parts.push(panel(0, y0, `Throughput, ${section}`, seriesOf((m) => m.throughput), threads, formatRate, 'linear'));
    parts.push(panel(PANEL_WIDTH, y0, `p99 acquire latency (log), ${section}`, seriesOf((m) => m.p99Ns), threads, formatNs, 'log'));
  });
  parts.push('</svg>');
  return parts.join('\n');
}
