// The results table: one row per figure, with its ratio to the baseline transaction rate and the
// issue's target (set for PostgreSQL on a 2-core machine).

import { mb } from './proc.ts';

export interface Row {
  readonly metric: string;
  readonly value: number | string;
  readonly unit: string;
  /** value ÷ baseline tx/s, for throughputs. */
  readonly ratio?: number;
  readonly target?: string;
  readonly meets?: boolean;
  /** Server process CPU milliseconds per operation. */
  readonly cpu_ms?: number;
  /** PostgreSQL's CPU milliseconds per operation (all its processes on this machine). */
  readonly db_cpu_ms?: number;
  readonly note?: string;
}

export function ratio(value: number, baseline: number): number {
  return baseline > 0 ? Math.round((value / baseline) * 100) / 100 : NaN;
}

export const fmtBytes = (b: number): string => `${mb(b)}`;

function cell(v: number | string | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return 'n/a';
  return Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : String(Math.round(v * 100) / 100);
}

export function renderTable(title: string, rows: readonly Row[]): string {
  const header = [
    'metric',
    'value',
    'unit',
    '× baseline',
    'target',
    'meets',
    'server CPU ms/op',
    'db CPU ms/op',
    'note',
  ];
  const body = rows.map((r) => [
    r.metric,
    cell(r.value),
    r.unit,
    r.ratio === undefined ? '' : `${cell(r.ratio)}×`,
    r.target ?? '',
    r.meets === undefined ? '' : r.meets ? 'yes' : 'NO',
    r.cpu_ms === undefined ? '' : cell(r.cpu_ms),
    r.db_cpu_ms === undefined ? '' : cell(r.db_cpu_ms),
    r.note ?? '',
  ]);
  const right = new Set([1, 3, 6, 7]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cols: string[]) =>
    `| ${cols.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (right.has(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [`### ${title}`, '', line(header), sep, ...body.map(line)].join('\n');
}
