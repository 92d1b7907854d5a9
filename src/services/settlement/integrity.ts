import { sql, type Kysely } from 'kysely';
import { currencyExponent } from '../../domain/config/fx.ts';
import type { Config } from '../../domain/config/schema.ts';
import { PROGRAM_DEFAULTS } from '../../domain/config/schema.ts';
import { div, mul, parseDecimal, ratio, type Ratio } from '../../domain/decimal.ts';
import { ratioFromJson, ratioToJson } from '../../domain/earn/codec.ts';
import { canonicalJson } from '../../domain/events/canonical.ts';
import { settlementAmounts } from '../../domain/settlement/settle.ts';
import type { DB } from '../../store/schema.ts';
import { freeze } from './periods.ts';
import type { StoredLines } from './statement.ts';

// The settlement checks of `verify` that SQL alone cannot do exactly (flows hold exact ratios):
// each returns offending rows, at most `limit`, like the SQL checks in verify.ts.

type Offender = Record<string, unknown>;
const ENTRY_PAGE = 500;

/**
 * Issuer brand → every "reimbursement rate × 10^exponent of the common currency" any applied
 * configuration version gave it: a flow's exact amount is its allocation's value × one of these.
 * Any version, not the one in force at the flow's instant, because a server caches the config
 * for up to a second after another instance applies a new one.
 */
async function allowedFactors(db: Kysely<DB>): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  const versions = await db.selectFrom('config_versions').select('document').orderBy('version').execute();
  for (const v of versions) {
    const doc = v.document as unknown as Config;
    const scale = ratio(10n ** BigInt(currencyExponent(doc.group.common_currency)));
    for (const b of doc.brands) {
      const program = doc.programs.find((p) => p.id === b.program);
      const rate = parseDecimal(
        program?.settlement?.reimbursement_rate ?? PROGRAM_DEFAULTS.reimbursement_rate,
      );
      const set = out.get(b.id) ?? new Set<string>();
      set.add(ratioToJson(mul(rate, scale)));
      out.set(b.id, set);
    }
  }
  return out;
}

interface Flow {
  id: bigint;
  entry_id: bigint;
  redemption_id: string;
  issuer_brand_id: string;
  redeemer_brand_id: string;
  program_id: string;
  points_pt4: bigint;
  value_common: string;
  amount_minor: bigint;
}

interface Alloc {
  entry_id: bigint;
  redemption_id: string | null;
  issuing_brand_id: string;
  redeemer: string;
  program_id: string;
  points_pt4: bigint;
  value_common: string | null;
}

const FLOW_COLUMNS = [
  'id',
  'entry_id',
  'redemption_id',
  'issuer_brand_id',
  'redeemer_brand_id',
  'program_id',
  'points_pt4',
  'value_common',
  'amount_minor',
] as const;

/**
 * Every flow re-derived from the ledger: a redemption's (or capture's) flows are, in order, its
 * cross-brand spent allocations, with value × an allowed reimbursement factor as the exact amount
 * and the amounts re-rounded by settle.ts's cumulative half-even rule; a reversal's flows are the
 * exact negation of the redemption's. Catches an edited amount_minor, value_common or brand.
 */
export async function flowsNotMatchingAllocations(db: Kysely<DB>, limit: number): Promise<Offender[]> {
  const factors = await allowedFactors(db);
  const bad: Offender[] = [];
  let after = -1n;
  while (bad.length < limit) {
    const entries = (
      await db
        .selectFrom('settlement_flows')
        .select('entry_id')
        .distinct()
        .where('entry_id', '>', after)
        .orderBy('entry_id')
        .limit(ENTRY_PAGE)
        .execute()
    ).map((r) => r.entry_id);
    if (entries.length === 0) break;
    after = entries[entries.length - 1]!;
    const flows = await db
      .selectFrom('settlement_flows')
      .select(FLOW_COLUMNS)
      .where('entry_id', 'in', entries)
      .orderBy('entry_id')
      .orderBy('id')
      .execute();
    const allocs = await db
      .selectFrom('lot_allocations as la')
      .innerJoin('entries as e', 'e.id', 'la.entry_id')
      .innerJoin('redemptions as r', 'r.id', 'e.ref_id')
      .select([
        'la.entry_id',
        'e.ref_id as redemption_id',
        'la.issuing_brand_id',
        'r.brand_id as redeemer',
        'la.program_id',
        'la.points_pt4',
        'la.value_common',
      ])
      .where('la.entry_id', 'in', entries)
      .where('e.ref_type', '=', 'redemption')
      .where('la.kind', 'in', ['spend', 'capture'])
      .orderBy('la.id')
      .execute();
    const reversed = [...new Set(flows.filter((f) => f.points_pt4 < 0n).map((f) => f.redemption_id))];
    const originals =
      reversed.length === 0
        ? []
        : await db
            .selectFrom('settlement_flows')
            .select(FLOW_COLUMNS)
            .where('redemption_id', 'in', reversed)
            .where('points_pt4', '>', 0n)
            .orderBy('id')
            .execute();
    for (const [entry_id, list] of groupBy(flows, (f) => String(f.entry_id))) {
      const problem =
        list[0]!.points_pt4 > 0n
          ? checkForward(
              list,
              allocs.filter((a) => String(a.entry_id) === entry_id),
              factors,
            )
          : checkReversal(
              list,
              originals.filter((o) => o.redemption_id === list[0]!.redemption_id),
            );
      if (problem) bad.push({ entry_id, redemption_id: list[0]!.redemption_id, problem });
      if (bad.length >= limit) break;
    }
  }
  return bad;
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = out.get(k);
    if (list) list.push(it);
    else out.set(k, [it]);
  }
  return out;
}

function checkForward(
  flows: readonly Flow[],
  allocs: readonly Alloc[],
  factors: Map<string, Set<string>>,
): string | null {
  const cross = allocs.filter((a) => a.issuing_brand_id !== a.redeemer && a.value_common !== null);
  if (flows.some((f) => f.points_pt4 <= 0n)) return 'an entry mixes redemption and reversal flows';
  if (cross.length !== flows.length)
    return `${flows.length} flows for ${cross.length} cross-brand allocations`;
  const inputs = [];
  for (let i = 0; i < flows.length; i++) {
    const f = flows[i]!;
    const a = cross[i]!;
    if (
      f.redemption_id !== a.redemption_id ||
      f.issuer_brand_id !== a.issuing_brand_id ||
      f.redeemer_brand_id !== a.redeemer ||
      f.program_id !== a.program_id ||
      f.points_pt4 !== a.points_pt4
    ) {
      return `flow ${f.id} does not match its allocation (brand, program or points)`;
    }
    const value = ratioFromJson(a.value_common!);
    const exact = ratioFromJson(f.value_common);
    let factor: Ratio;
    if (value.num === 0n) {
      if (exact.num !== 0n) return `flow ${f.id} has an amount for an allocation worth nothing`;
      factor = ratio(0n);
    } else {
      factor = div(exact, value);
      if (!factors.get(f.issuer_brand_id)?.has(ratioToJson(factor)))
        return `flow ${f.id}: exact amount ${f.value_common} is not the allocation's value × a configured reimbursement rate`;
    }
    inputs.push({
      issuer_brand_id: f.issuer_brand_id,
      redeemer_brand_id: f.redeemer_brand_id,
      value,
      reimbursement_rate: factor,
      sign: 1 as const,
      points_pt4: f.points_pt4,
    });
  }
  // Factors already include the currency scale, so the amounts come out in minor units at exponent 0.
  const expected = settlementAmounts(inputs, 0);
  for (let i = 0; i < flows.length; i++) {
    if (expected[i]!.amount_minor !== flows[i]!.amount_minor)
      return `flow ${flows[i]!.id}: amount_minor ${flows[i]!.amount_minor}, expected ${expected[i]!.amount_minor}`;
  }
  return null;
}

function checkReversal(flows: readonly Flow[], originals: readonly Flow[]): string | null {
  if (flows.length !== originals.length)
    return `${flows.length} reversal flows for ${originals.length} redemption flows`;
  for (let i = 0; i < flows.length; i++) {
    const f = flows[i]!;
    const o = originals[i]!;
    const neg = ratioFromJson(o.value_common);
    if (
      f.issuer_brand_id !== o.issuer_brand_id ||
      f.redeemer_brand_id !== o.redeemer_brand_id ||
      f.program_id !== o.program_id ||
      f.points_pt4 !== -o.points_pt4 ||
      f.amount_minor !== -o.amount_minor ||
      ratioToJson(ratioFromJson(f.value_common)) !== ratioToJson(ratio(-neg.num, neg.den))
    ) {
      return `reversal flow ${f.id} is not the negation of flow ${o.id}`;
    }
  }
  return null;
}

/**
 * Every closed period, recomputed from its flows: same flow count, same frozen lines, same hash,
 * every flow dated before the period's `to`, and its net summing to zero.
 */
export async function changedStatements(db: Kysely<DB>, limit: number): Promise<Offender[]> {
  const bad: Offender[] = [];
  let after = 0n;
  while (bad.length < limit) {
    const periods = await db
      .selectFrom('settlement_periods')
      .selectAll()
      .where('id', '>', after)
      .orderBy('id')
      .limit(100)
      .execute();
    if (periods.length === 0) break;
    after = periods[periods.length - 1]!.id;
    for (const p of periods) {
      const again = await freeze(db, { id: p.id, from: p.from_at, to: p.to_at, currency: p.currency });
      const stored = p.lines as unknown as StoredLines;
      const late = await db
        .selectFrom('settlement_flows')
        .select('id')
        .where('period_id', '=', p.id)
        .where('at', '>=', p.to_at)
        .limit(1)
        .executeTakeFirst();
      const problem =
        again.hash !== p.hash
          ? `hash ${again.hash} recomputed, ${p.hash} recorded at close`
          : again.flow_count !== p.flow_count
            ? `${again.flow_count} flows now, ${p.flow_count} at close`
            : canonicalJson(again.lines) !== canonicalJson(stored) // jsonb does not keep key order
              ? 'the stored statement lines differ from the flows'
              : late
                ? `flow ${late.id} is dated at or after the period's end`
                : null;
      if (problem) bad.push({ period_id: String(p.id), problem });
      if (bad.length >= limit) break;
    }
  }
  return bad;
}

/**
 * Net positions sum to zero: for every closed statement's frozen net, and for the whole flow
 * history netted the way positions are (per pair re-rounded, then per brand).
 */
export async function netsNotZero(db: Kysely<DB>, limit: number): Promise<Offender[]> {
  const bad: Offender[] = [];
  const periods = await db.selectFrom('settlement_periods').select(['id', 'lines']).orderBy('id').execute();
  for (const p of periods) {
    const sum = (p.lines as unknown as StoredLines).net.reduce((s, n) => s + BigInt(n.amount_minor), 0n);
    if (sum !== 0n && bad.length < limit) bad.push({ period_id: String(p.id), net_sum: sum.toString() });
  }
  // All flows: per brand, what it receives minus what it pays, from the raw rows in SQL.
  const all = await sql<{ total: bigint | null }>`select sum(t.amount) as total from (
      select redeemer_brand_id as brand, amount_minor as amount from settlement_flows
      union all select issuer_brand_id, -amount_minor from settlement_flows) t`.execute(db);
  const total = BigInt(all.rows[0]?.total ?? 0n);
  if (total !== 0n && bad.length < limit) bad.push({ scope: 'all flows', net_sum: total.toString() });
  return bad;
}
