import { sql } from 'kysely';
import type { CompiledProgram, Group } from '../../domain/config/group.ts';
import type { EarnExplanation } from '../../domain/earn/types.ts';
import { DAY_MS } from '../../domain/expiry.ts';
import type { Pt4 } from '../../domain/points.ts';
import { valueInProgramCurrency, type Money } from '../../domain/valuation.ts';
import { AppError } from '../../errors.ts';
import type { Trx } from '../../ledger/post.ts';
import { requireGroup } from '../config.ts';
import { freeThen, lotsAt } from '../lots-at.ts';
import type { Ctx } from '../context.ts';
import { conversionsOf, SPENT, totalValue, type AllocationRow, type Conversion } from './conversions.ts';

// The member statement for a period (from, to]: per program, the balance at `from` (opening) and
// at `to` (closing), and every movement in between by what caused it. It is computed from the
// member's postings alone — opening = Σ postings at ≤ from, closing = Σ at ≤ to, movements =
// Σ in (from, to] by entry kind — so the totals tie to the ledger exactly. Like GET
// /balances?as_of, points of lots already past their expiry are out of available (or pending)
// and shown as expired_not_swept until the expire job books their expiry, so the same instants
// give the same numbers. The balance is available + pending + held + expired_not_swept.
// Amounts stay bigint (pt4, minor units) here; json.ts and the templates format them.

export type Category = 'earned' | 'redeemed' | 'transferred' | 'reversed' | 'expired' | 'adjusted' | 'other';

/** Which movement an entry kind is. Holds and releases move points between the member's own
 * accounts (net zero) but belong with the redemption they serve; maturation is internal. */
const CATEGORY_OF: Readonly<Record<string, Category>> = {
  accrual: 'earned',
  referral_bonus: 'earned',
  redemption: 'redeemed',
  hold: 'redeemed',
  capture: 'redeemed',
  release: 'redeemed',
  redemption_reversal: 'redeemed',
  transfer: 'transferred',
  reversal: 'reversed',
  expiry: 'expired',
  adjustment: 'adjusted',
};
export const categoryOf = (entry_kind: string): Category => CATEGORY_OF[entry_kind] ?? 'other';

/** Rows read for one statement; a longer period must be asked for in parts. */
export const MAX_STATEMENT_POSTINGS = 20_000;

export interface Balance {
  /** available + pending + held + expired_not_swept: what the member's accounts hold. */
  readonly total_pt4: Pt4;
  /** What a redemption at the instant could spend (lots past their expiry left out). */
  readonly available_pt4: Pt4;
  readonly pending_pt4: Pt4;
  readonly held_pt4: Pt4;
  /** Points of lots expired by the instant that the expire job had not taken yet. */
  readonly expired_not_swept_pt4: Pt4;
}

interface ItemBase {
  readonly entry_id: bigint;
  readonly at: Date;
  readonly entry_kind: string;
  /** The entry's net effect on the member's balance in this program. */
  readonly points_pt4: Pt4;
}

export interface EarnItem extends ItemBase {
  readonly event_id: string | null;
  readonly store_id: string | null;
  readonly brand_id: string | null;
  readonly rules_applied: readonly string[];
  /** Points before any rule. */
  readonly base_pt4: Pt4 | null;
  readonly multipliers: readonly {
    sku: string | null;
    multiplier: string;
    rules_applied: readonly string[];
  }[];
  readonly bonuses: readonly { rule_id: string; points_pt4: Pt4 }[];
  readonly capped: boolean;
}

export interface RedeemItem extends ItemBase {
  readonly redemption_id: string | null;
  readonly brand_id: string | null;
  readonly conversions: readonly Conversion[];
}

export interface TransferItem extends ItemBase {
  readonly transfer_id: string | null;
  readonly direction: 'in' | 'out';
  readonly counterparty_member_id: string | null;
}

export interface ReverseItem extends ItemBase {
  readonly event_id: string | null;
  readonly reversal_of: string | null;
}

export interface ExpireItem extends ItemBase {
  readonly by_brand: readonly { issuing_brand_id: string; points_pt4: Pt4 }[];
}

export interface AdjustItem extends ItemBase {
  readonly adjustment_id: string | null;
  readonly reason_code: string | null;
  readonly note: string | null;
}

export interface Section<T> {
  points_pt4: Pt4;
  items: T[];
}

export interface ExpiringLot {
  readonly lot_id: bigint;
  readonly issuing_brand_id: string;
  readonly points_pt4: Pt4;
  readonly expires_at: Date;
}

export interface ProgramStatement {
  readonly program_id: string;
  readonly brand_id: string | null;
  readonly currency: string | null;
  readonly opening: Balance;
  readonly closing: Balance;
  readonly closing_value: Money | null;
  readonly earned: Section<EarnItem>;
  readonly redeemed: Section<RedeemItem> & { value: Conversion['value'] };
  readonly transferred: Section<TransferItem>;
  readonly reversed: Section<ReverseItem>;
  readonly expired: Section<ExpireItem>;
  readonly adjusted: Section<AdjustItem>;
  readonly other: { points_pt4: Pt4 };
  readonly movements_pt4: Pt4;
  readonly expiring_soon: { window_days: number; until: Date; points_pt4: Pt4; lots: ExpiringLot[] };
}

export interface Statement {
  readonly member_id: string;
  readonly from: Date;
  readonly to: Date;
  readonly generated_at: Date;
  readonly common_currency: string;
  readonly group_id: string;
  readonly programs: ProgramStatement[];
}

interface PeriodPosting {
  entry_id: bigint;
  program_id: string;
  account_kind: string;
  amount_pt4: bigint;
  entry_kind: string;
  at: Date;
  entry_member_id: string | null;
  event_id: string | null;
  ref_type: string | null;
  ref_id: string | null;
  detail: Record<string, unknown>;
}

export async function buildStatement(ctx: Ctx, member_id: string, from: Date, to: Date): Promise<Statement> {
  if (!(from.getTime() < to.getTime()))
    throw new AppError(
      'INVALID_PERIOD',
      `from (${from.toISOString()}) must be before to (${to.toISOString()})`,
      { field: 'from' },
    );
  const group = await requireGroup(ctx);
  // One read transaction (repeatable read on PostgreSQL): balances and movements see one ledger.
  return ctx.db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const member = await trx
        .selectFrom('members')
        .select('id')
        .where('id', '=', member_id)
        .executeTakeFirst();
      if (!member) throw new AppError('MEMBER_NOT_FOUND', undefined, { member_id });
      const balances = await sql<{ program_id: string; kind: string; opening: bigint; closing: bigint }>`
        select a.program_id, a.kind,
          coalesce(sum(case when p.at <= ${from} then p.amount_pt4 else 0 end), 0)::int8 as opening,
          coalesce(sum(p.amount_pt4), 0)::int8 as closing
        from accounts a join postings p on p.account_id = a.id and p.at <= ${to}
        where a.owner_id = ${member_id} and a.kind like 'member_%'
        group by a.program_id, a.kind`.execute(trx);
      const postings = await sql<PeriodPosting>`
        select p.entry_id, p.program_id, a.kind as account_kind, p.amount_pt4, e.kind as entry_kind, e.at,
          e.member_id as entry_member_id, e.event_id, e.ref_type, e.ref_id, e.detail
        from postings p
          join accounts a on a.id = p.account_id
          join entries e on e.id = p.entry_id
        where a.owner_id = ${member_id} and a.kind like 'member_%' and p.at > ${from} and p.at <= ${to}
        order by p.entry_id, p.program_id
        limit ${MAX_STATEMENT_POSTINGS + 1}`.execute(trx);
      if (postings.rows.length > MAX_STATEMENT_POSTINGS) {
        throw new AppError(
          'STATEMENT_TOO_LARGE',
          `More than ${MAX_STATEMENT_POSTINGS} postings between ${from.toISOString()} and ${to.toISOString()}`,
          { limit: MAX_STATEMENT_POSTINGS },
        );
      }
      const enrolled = await trx
        .selectFrom('enrollments')
        .select('program_id')
        .where('member_id', '=', member_id)
        .where('enrolled_at', '<=', to)
        .execute();

      const redemptionRefs = [
        ...new Set(
          postings.rows.filter((p) => p.ref_type === 'redemption' && p.ref_id !== null).map((p) => p.ref_id!),
        ),
      ];
      const expiryEntries = [
        ...new Set(postings.rows.filter((p) => p.entry_kind === 'expiry').map((p) => p.entry_id)),
      ];
      const allocations = await readAllocations(trx, member_id, redemptionRefs, expiryEntries);
      const redeemers = new Map(
        redemptionRefs.length === 0
          ? []
          : (
              await trx
                .selectFrom('redemptions')
                .select(['id', 'brand_id'])
                .where('id', 'in', redemptionRefs)
                .execute()
            ).map((r) => [r.id, r.brand_id] as const),
      );
      const expiring = await expiringLots(trx, member_id, to, group);
      const unswept = {
        opening: await unsweptAt(trx, member_id, from),
        closing: await unsweptAt(trx, member_id, to),
      };

      const programIds = [
        ...new Set([...balances.rows.map((b) => b.program_id), ...enrolled.map((e) => e.program_id)]),
      ].sort();
      const programs = programIds.map((program_id) =>
        programStatement(group, program_id, {
          balances: balances.rows.filter((b) => b.program_id === program_id),
          postings: postings.rows.filter((p) => p.program_id === program_id),
          allocations,
          redeemers,
          expiring: expiring.get(program_id) ?? [],
          unswept: {
            opening: unswept.opening.get(program_id) ?? NONE_UNSWEPT,
            closing: unswept.closing.get(program_id) ?? NONE_UNSWEPT,
          },
          member_id,
          to,
        }),
      );
      return {
        member_id,
        from,
        to,
        generated_at: ctx.clock.now(),
        common_currency: group.common_currency,
        group_id: group.id,
        programs,
      };
    });
}

interface Inputs {
  balances: readonly { kind: string; opening: bigint; closing: bigint }[];
  postings: readonly PeriodPosting[];
  allocations: Allocations;
  redeemers: ReadonlyMap<string, string>;
  expiring: ExpiringLot[];
  unswept: { opening: Unswept; closing: Unswept };
  member_id: string;
  to: Date;
}

/** Points of lots expired by an instant and not yet taken then, by the state of their lot. */
interface Unswept {
  readonly available_pt4: Pt4;
  readonly pending_pt4: Pt4;
}
const NONE_UNSWEPT: Unswept = { available_pt4: 0n, pending_pt4: 0n };

function balanceOf(rows: Inputs['balances'], which: 'opening' | 'closing', unswept: Unswept): Balance {
  const of = (kind: string) => rows.filter((r) => r.kind === kind).reduce((s, r) => s + r[which], 0n);
  const booked_available = of('member_available');
  const booked_pending = of('member_pending');
  const held_pt4 = of('member_held');
  return {
    total_pt4: booked_available + booked_pending + held_pt4,
    available_pt4: booked_available - unswept.available_pt4,
    pending_pt4: booked_pending - unswept.pending_pt4,
    held_pt4,
    expired_not_swept_pt4: unswept.available_pt4 + unswept.pending_pt4,
  };
}

function programStatement(group: Group, program_id: string, inp: Inputs): ProgramStatement {
  const program = group.programs.get(program_id);
  const opening = balanceOf(inp.balances, 'opening', inp.unswept.opening);
  const closing = balanceOf(inp.balances, 'closing', inp.unswept.closing);
  const s = {
    earned: { points_pt4: 0n, items: [] as EarnItem[] },
    redeemed: { points_pt4: 0n, items: [] as RedeemItem[] },
    transferred: { points_pt4: 0n, items: [] as TransferItem[] },
    reversed: { points_pt4: 0n, items: [] as ReverseItem[] },
    expired: { points_pt4: 0n, items: [] as ExpireItem[] },
    adjusted: { points_pt4: 0n, items: [] as AdjustItem[] },
    other: { points_pt4: 0n },
  };
  // One item per entry: the member's postings of the entry in this program, netted.
  const entries = new Map<bigint, { first: PeriodPosting; points_pt4: bigint }>();
  for (const p of inp.postings) {
    const e = entries.get(p.entry_id) ?? { first: p, points_pt4: 0n };
    e.points_pt4 += p.amount_pt4;
    entries.set(p.entry_id, e);
  }
  for (const { first: p, points_pt4 } of entries.values()) {
    const category = categoryOf(p.entry_kind);
    s[category].points_pt4 += points_pt4;
    if (points_pt4 === 0n || category === 'other') continue; // internal moves: no line for the member
    const base = { entry_id: p.entry_id, at: p.at, entry_kind: p.entry_kind, points_pt4 };
    const d = p.detail;
    const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
    switch (category) {
      case 'earned':
        s.earned.items.push(earnItem(group, base, p, program_id));
        break;
      case 'redeemed': {
        const ref = p.ref_id ?? '';
        const rows = (inp.allocations.byEntry.get(p.entry_id) ?? []).filter(
          (a) => a.program_id === program_id,
        );
        const all = (inp.allocations.byRedemption.get(ref) ?? []).filter((a) => a.program_id === program_id);
        const brand = inp.redeemers.get(ref) ?? str(d.brand_id);
        s.redeemed.items.push({
          ...base,
          redemption_id: p.ref_id,
          brand_id: brand,
          conversions: conversionsOf(rows, brand, group.common_currency, SPENT, all),
        });
        break;
      }
      case 'transferred': {
        const out = points_pt4 < 0n;
        s.transferred.items.push({
          ...base,
          transfer_id: str(d.transfer_id) ?? p.ref_id,
          direction: out ? 'out' : 'in',
          counterparty_member_id: out ? str(d.to_member_id) : p.entry_member_id,
        });
        break;
      }
      case 'reversed':
        s.reversed.items.push({ ...base, event_id: p.event_id, reversal_of: str(d.reversal_of) });
        break;
      case 'expired': {
        const byBrand = new Map<string, bigint>();
        for (const a of inp.allocations.byEntry.get(p.entry_id) ?? []) {
          if (a.program_id === program_id && a.kind === 'expire')
            byBrand.set(a.issuing_brand_id, (byBrand.get(a.issuing_brand_id) ?? 0n) + a.points_pt4);
        }
        s.expired.items.push({
          ...base,
          by_brand: [...byBrand]
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([issuing_brand_id, pts]) => ({ issuing_brand_id, points_pt4: pts })),
        });
        break;
      }
      case 'adjusted':
        s.adjusted.items.push({
          ...base,
          adjustment_id: str(d.adjustment_id) ?? p.ref_id,
          reason_code: str(d.reason_code),
          note: str(d.note),
        });
        break;
    }
  }
  const movements_pt4 =
    s.earned.points_pt4 +
    s.redeemed.points_pt4 +
    s.transferred.points_pt4 +
    s.reversed.points_pt4 +
    s.expired.points_pt4 +
    s.adjusted.points_pt4 +
    s.other.points_pt4;
  // The statement's promise: opening + movements = closing, exactly. Both sides come from the
  // same postings split at different instants, so a mismatch is a bug here, never in the data.
  if (opening.total_pt4 + movements_pt4 !== closing.total_pt4) {
    throw new Error(
      `statement for ${inp.member_id} in ${program_id} does not tie: ${opening.total_pt4} + ${movements_pt4} != ${closing.total_pt4}`,
    );
  }
  const window_days = program?.expiring_window_days ?? 90;
  return {
    program_id,
    brand_id: program?.brand_id ?? null,
    currency: program?.currency ?? null,
    opening,
    closing,
    closing_value: program
      ? valueInProgramCurrency(program, closing.available_pt4 > 0n ? closing.available_pt4 : 0n)
      : null,
    ...s,
    redeemed: { ...s.redeemed, value: totalValue(s.redeemed.items.flatMap((i) => i.conversions)) },
    movements_pt4,
    expiring_soon: {
      window_days,
      until: new Date(inp.to.getTime() + window_days * DAY_MS),
      points_pt4: inp.expiring.reduce((sum, l) => sum + l.points_pt4, 0n),
      lots: inp.expiring,
    },
  };
}

function earnItem(group: Group, base: ItemBase, p: PeriodPosting, program_id: string): EarnItem {
  const d = p.detail;
  const store_id = typeof d.store_id === 'string' ? d.store_id : null;
  const x = (d.earn as Record<string, EarnExplanation> | undefined)?.[program_id];
  if (p.entry_kind === 'referral_bonus') {
    return {
      ...base,
      event_id: p.event_id,
      store_id,
      brand_id: null,
      rules_applied: ['referral'],
      base_pt4: null,
      multipliers: [],
      bonuses: [],
      capped: false,
    };
  }
  return {
    ...base,
    event_id: p.event_id,
    store_id,
    brand_id: store_id ? (group.stores.get(store_id)?.brand ?? null) : null,
    rules_applied: x?.rules_applied ?? [],
    base_pt4: x ? BigInt(x.base_pt4) : null,
    multipliers: (x?.lines ?? [])
      .filter((l) => l.rules_applied.length > 0 && l.multiplier !== '1')
      .map((l) => ({ sku: l.sku, multiplier: l.multiplier, rules_applied: l.rules_applied })),
    bonuses: (x?.bonuses ?? []).map((b) => ({ rule_id: b.rule_id, points_pt4: BigInt(b.points_pt4) })),
    capped: x?.capped ?? false,
  };
}

interface Allocations {
  byEntry: Map<bigint, AllocationRow[]>;
  byRedemption: Map<string, AllocationRow[]>;
}

/** Allocations of the redemptions the period touches (all their entries, for unit values) and of its expiry entries, on the member's lots. */
async function readAllocations(
  trx: Trx,
  member_id: string,
  redemption_ids: readonly string[],
  expiry_entry_ids: readonly bigint[],
): Promise<Allocations> {
  const out: Allocations = { byEntry: new Map(), byRedemption: new Map() };
  const push = <K>(m: Map<K, AllocationRow[]>, k: K, r: AllocationRow) => {
    const list = m.get(k);
    if (list) list.push(r);
    else m.set(k, [r]);
  };
  if (redemption_ids.length > 0) {
    const rows = await trx
      .selectFrom('lot_allocations as la')
      .innerJoin('entries as e', 'e.id', 'la.entry_id')
      .innerJoin('lots as l', 'l.id', 'la.lot_id')
      .select([
        'e.ref_id',
        'la.entry_id',
        'la.lot_id',
        'la.program_id',
        'la.issuing_brand_id',
        'la.kind',
        'la.points_pt4',
        'la.value_common',
      ])
      .where('e.ref_type', '=', 'redemption')
      .where('e.ref_id', 'in', redemption_ids)
      .where('l.member_id', '=', member_id)
      .orderBy('la.id')
      .execute();
    for (const r of rows) {
      push(out.byEntry, r.entry_id, r);
      push(out.byRedemption, r.ref_id ?? '', r);
    }
  }
  if (expiry_entry_ids.length > 0) {
    const rows = await trx
      .selectFrom('lot_allocations')
      .select(['entry_id', 'lot_id', 'program_id', 'issuing_brand_id', 'kind', 'points_pt4', 'value_common'])
      .where('entry_id', 'in', expiry_entry_ids)
      .orderBy('id')
      .execute();
    for (const r of rows) push(out.byEntry, r.entry_id, r);
  }
  return out;
}

/** Lots with points left at `to` that expire within each program's window after it, lot by lot. */
async function expiringLots(
  trx: Trx,
  member_id: string,
  to: Date,
  group: Group,
): Promise<Map<string, ExpiringLot[]>> {
  const programs = [...group.programs.values()];
  const maxDays = Math.max(90, ...programs.map((p: CompiledProgram) => p.expiring_window_days));
  // Capped at the last instant RFC 3339 can write: a `to` late in year 9999 plus the window would
  // name year 10000, which the embedded store refuses.
  const until = new Date(Math.min(to.getTime() + maxDays * DAY_MS, LATEST_MS));
  const lots = await lotsAt(trx, member_id, to, { after: to, until });
  const out = new Map<string, ExpiringLot[]>();
  // As GET /balances lists them: free points of matured lots (held ones are committed already).
  for (const l of lots) {
    const window = group.programs.get(l.program_id)?.expiring_window_days ?? 90;
    const free = freeThen(l);
    const expires_at = l.expires_at;
    if (l.pending || free <= 0n || !expires_at || expires_at.getTime() > to.getTime() + window * DAY_MS)
      continue;
    const list = out.get(l.program_id) ?? [];
    list.push({ lot_id: l.id, issuing_brand_id: l.issuing_brand_id, points_pt4: free, expires_at });
    out.set(l.program_id, list);
  }
  for (const list of out.values())
    list.sort((a, b) => a.expires_at.getTime() - b.expires_at.getTime() || (a.lot_id < b.lot_id ? -1 : 1));
  return out;
}

const LATEST_MS = Date.parse('9999-12-31T23:59:59.999Z');

/** Per program, the free points at `at` of the member's lots booked by then and expired by then. */
async function unsweptAt(trx: Trx, member_id: string, at: Date): Promise<Map<string, Unswept>> {
  const lots = await lotsAt(trx, member_id, at, { until: at });
  const out = new Map<string, Unswept>();
  for (const l of lots) {
    const free = freeThen(l);
    if (free <= 0n) continue;
    const u = out.get(l.program_id) ?? NONE_UNSWEPT;
    out.set(
      l.program_id,
      l.pending
        ? { ...u, pending_pt4: u.pending_pt4 + free }
        : { ...u, available_pt4: u.available_pt4 + free },
    );
  }
  return out;
}
