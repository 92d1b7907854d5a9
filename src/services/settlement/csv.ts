import { currencyExponent } from '../../domain/config/fx.ts';
import { AppError } from '../../errors.ts';
import type { Ctx } from '../context.ts';
import { getStatement, type Statement } from './periods.ts';

// GET /v1/settlement/periods/{id}.csv and `pointpool settle export ID`: the statement for an
// accounting import. RFC 4180 (CRLF, header row, quoting where needed), one `flow` record per
// issuer→redeemer pair (the issuer owes the redeemer `amount_minor`), then one `net` record per
// brand (positive: the brand receives). `amount` repeats amount_minor in major units as an exact
// decimal string, for tools that import money as a decimal. Every record carries the period, so
// files of several periods concatenate.

export const CSV_HEADER = [
  'record_type',
  'period_id',
  'period_from',
  'period_to',
  'currency',
  'issuer_brand_id',
  'redeemer_brand_id',
  'brand_id',
  'points',
  'allocations_amount_minor',
  'residual_minor',
  'amount_minor',
  'amount',
] as const;

/** Quotes a field when it holds a delimiter, quote or line break; a text field that a spreadsheet
 * would read as a formula (= + - @ at the start) is prefixed with an apostrophe. */
function field(v: string | number | null, text = false): string {
  let s = v === null ? '' : String(v);
  if (text && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Minor units → a fixed-point decimal in major units: (-1205, 2) → "-12.05", (1200, 2) → "12.00". */
export function minorToMajor(minor: bigint, exponent: number): string {
  const abs = minor < 0n ? -minor : minor;
  const scale = 10n ** BigInt(exponent);
  const frac = exponent > 0 ? `.${(abs % scale).toString().padStart(exponent, '0')}` : '';
  return `${minor < 0n ? '-' : ''}${abs / scale}${frac}`;
}

export function statementCsv(st: Statement): string {
  const exp = currencyExponent(st.currency);
  const major = (minor: number) => minorToMajor(BigInt(minor), exp);
  const head = [field(st.id), field(st.from), field(st.to), field(st.currency, true)];
  const rows: string[] = [CSV_HEADER.join(',')];
  for (const f of st.flows) {
    rows.push(
      [
        field('flow'),
        ...head,
        field(f.issuer_brand_id, true),
        field(f.redeemer_brand_id, true),
        '',
        field(f.points),
        field(f.allocations_amount_minor),
        field(f.residual_minor),
        field(f.amount_minor),
        field(major(f.amount_minor)),
      ].join(','),
    );
  }
  for (const n of st.net) {
    rows.push(
      [
        field('net'),
        ...head,
        '',
        '',
        field(n.brand_id, true),
        '',
        '',
        '',
        field(n.amount_minor),
        field(major(n.amount_minor)),
      ].join(','),
    );
  }
  return rows.join('\r\n') + '\r\n';
}

/** The CSV text of a closed period's statement (the CLI writes it to stdout). */
export async function exportPeriodCsv(ctx: Ctx, id: bigint | number | string): Promise<string> {
  const text = String(id);
  if (!/^[1-9][0-9]{0,17}$/.test(text))
    throw new AppError('SETTLEMENT_PERIOD_NOT_FOUND', `No settlement period ${text}`, { period_id: text });
  return statementCsv(await getStatement(ctx, BigInt(text)));
}
