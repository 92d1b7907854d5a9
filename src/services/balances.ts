import { sql } from 'kysely';
import type { Group } from '../domain/config/group.ts';
import { currencyExponent } from '../domain/config/fx.ts';
import { formatRatio, mul } from '../domain/decimal.ts';
import { valueMinor } from '../domain/lots/conversion.ts';
import { poolInDefaultPoints } from '../domain/lots/group-plan.ts';
import { pt4ToJson, pt4ToRatio } from '../domain/points.ts';
import { poolUnits } from '../domain/pool-valuation.ts';
import { baseTier } from '../domain/tiers.ts';
import { moneyJson, valueInProgramCurrency } from '../domain/valuation.ts';
import { AppError } from '../errors.ts';
import { readCurrent } from './balances-current.ts';
import type { Ctx } from './context.ts';
import { requireGroup } from './config.ts';
import { freeThen, lotsAt, type LotThen } from './lots-at.ts';
import { tierThen, tiersAsOf } from './tier-at.ts';

// The contract's balances view. Without as_of (or with one not in the past) it reads the running
// balances and the lots' running remaining, in one statement (balances-current.ts); with a past
// as_of it sums the member's postings up to that instant and rebuilds each lot as it stood then
// from its allocations, so the answer comes from the ledger as it stood then. Both paths feed the
// same assembly below, so they can only differ in what they read.
//
// Rules both paths follow (README "Balances"):
// - `available` is what a redemption at the instant could spend: points of lots whose expires_at
//   (to the millisecond) is at or before the instant are left out even while the expire job has
//   not swept them yet (redemption's own rule, services/redemptions/spend-read.ts), and shown as
//   `expired_not_swept`; a future as_of leaves out what will have expired by then.
// - Pending points stay pending until the mature job moves them: a redemption only spends matured
//   lots, so a future as_of does not project pending lots into available.
// - `expiring` lists what the member can lose by not spending: the unheld points of available lots
//   expiring within the program's window. Held points are committed to a redemption, pending ones
//   cannot be spent yet.

interface ProgramBalance {
  program_id: string;
  available_pt4: bigint;
  pending_pt4: bigint;
  held_pt4: bigint;
}

/** Points of lots expired at the instant that the expire job has not taken yet, by lot state. */
interface Expired {
  available_pt4: bigint;
  pending_pt4: bigint;
}

/** What the answer is assembled from, whichever path read it. */
interface BalanceInputs {
  readonly balances: Map<string, ProgramBalance>;
  /** The enrollments in force at the instant asked about, with the tier held then. */
  readonly enrollments: readonly { readonly program_id: string; readonly tier: string | null }[];
  readonly expiring: Readonly<Record<string, { points: number; expires_at: string }[]>>;
  readonly pending: Readonly<Record<string, { points: number; available_at: string }[]>>;
  readonly expired: ReadonlyMap<string, Expired>;
}

export async function getBalances(ctx: Ctx, member_id: string, as_of?: Date) {
  const group = await requireGroup(ctx);
  const now = ctx.clock.now();
  const at = as_of ?? now;
  const historical = as_of !== undefined && as_of.getTime() < now.getTime();
  const inputs = historical
    ? await historicalInputs(ctx, group, member_id, at)
    : await currentInputs(ctx, group, member_id, at);
  if (!inputs) throw new AppError('MEMBER_NOT_FOUND', undefined, { member_id });
  return assemble(group, member_id, at, inputs);
}

function assemble(group: Group, member_id: string, at: Date, inp: BalanceInputs) {
  // Each program's balance as a redemption at `at` sees it: expired lots left out.
  const spendable = new Map<string, ProgramBalance & { expired_pt4: bigint }>();
  for (const id of new Set([...inp.balances.keys(), ...inp.expired.keys()])) {
    const b = inp.balances.get(id) ?? zero(id);
    const x = inp.expired.get(id) ?? { available_pt4: 0n, pending_pt4: 0n };
    spendable.set(id, {
      program_id: id,
      available_pt4: b.available_pt4 - x.available_pt4,
      pending_pt4: b.pending_pt4 - x.pending_pt4,
      held_pt4: b.held_pt4,
      expired_pt4: x.available_pt4 + x.pending_pt4,
    });
  }
  const programs = inp.enrollments
    .filter((e) => group.programs.has(e.program_id))
    .sort((a, b) => a.program_id.localeCompare(b.program_id))
    .map((e) => {
      const program = group.programs.get(e.program_id)!;
      const b = spendable.get(e.program_id) ?? { ...zero(e.program_id), expired_pt4: 0n };
      return {
        program_id: e.program_id,
        brand_id: program.brand_id,
        // Enrolled without a purchase (a transfer, an adjustment, a referral bonus): the base tier.
        tier: e.tier ?? baseTier(program.tiers),
        available: pt4ToJson(b.available_pt4),
        pending: pt4ToJson(b.pending_pt4),
        held: pt4ToJson(b.held_pt4),
        expired_not_swept: pt4ToJson(b.expired_pt4),
        pending_lots: inp.pending[e.program_id] ?? [],
        expiring: inp.expiring[e.program_id] ?? [],
        value: moneyJson(valueInProgramCurrency(program, b.available_pt4 > 0n ? b.available_pt4 : 0n)),
      };
    });

  // Only programs with points to value need a rate (pool-valuation.ts).
  const byProgram = new Map(
    [...spendable.values()]
      .filter((b) => b.available_pt4 > 0n && group.programs.has(b.program_id))
      .map((b) => [b.program_id, b.available_pt4] as const),
  );
  const { units, rates } = poolUnits(group, byProgram.keys(), at.getTime());
  const defaultUnit = units.get(group.default_program_id)!;
  const groupPt4 = poolInDefaultPoints(
    byProgram,
    new Map([...units].map(([k, u]) => [k, u.unit_value])),
    defaultUnit.unit_value,
    defaultUnit.precision,
  );
  const groupValue = valueMinor(
    mul(pt4ToRatio(groupPt4), defaultUnit.unit_value),
    currencyExponent(group.common_currency),
  );
  return {
    member_id,
    as_of: at.toISOString(),
    programs,
    group: {
      points: pt4ToJson(groupPt4),
      value: { amount_minor: Number(groupValue), currency: group.common_currency },
      fx_rates_used: rates.map((r) => ({
        currency: r.currency,
        rate: formatRatio(r.rate),
        effective_from: new Date(r.effective_from_ms).toISOString(),
        in_force: r.in_force,
      })),
    },
  };
}

const zero = (program_id: string): ProgramBalance => ({
  program_id,
  available_pt4: 0n,
  pending_pt4: 0n,
  held_pt4: 0n,
});

async function currentInputs(
  ctx: Ctx,
  group: Group,
  member_id: string,
  at: Date,
): Promise<BalanceInputs | null> {
  const r = await readCurrent(ctx, group, member_id, at.toISOString());
  if (!r) return null;
  const expired = new Map<string, Expired>();
  for (const [program_id, state, pt4] of r.expired) {
    const x = expired.get(program_id) ?? { available_pt4: 0n, pending_pt4: 0n };
    if (state === 'pending') x.pending_pt4 += BigInt(pt4);
    else x.available_pt4 += BigInt(pt4);
    expired.set(program_id, x);
  }
  return {
    balances: fold(r.accounts.map(([program_id, kind, pt4]) => ({ program_id, kind, amount: BigInt(pt4) }))),
    enrollments: r.enrollments.map(([program_id, tier]) => ({ program_id, tier })),
    expiring: r.expiring,
    pending: r.pending,
    expired,
  };
}

// As of a past instant: the member and its enrollments, the tiers then, the postings' sums and
// the member's lots as they stood then, in four statements. Everything is on one timeline, the
// ledger's booking time: postings, lot moves and lots by the entries that made them, tiers by when
// the change was recorded (and from when it counts), so a late event booked after `at` is not in
// the answer in any part.
async function historicalInputs(
  ctx: Ctx,
  group: Group,
  member_id: string,
  at: Date,
): Promise<BalanceInputs | null> {
  const enrolled = await ctx.db
    .selectFrom('members as m')
    .leftJoin('enrollments as e', 'e.member_id', 'm.id')
    .select(['e.program_id', 'e.tier', 'e.enrolled_at'])
    .where('m.id', '=', member_id)
    .execute();
  if (enrolled.length === 0) return null;
  const tiers = await tiersAsOf(ctx.db, member_id, at);
  const balances = await balancesAsOf(ctx, member_id, at);
  const lots = await lotsAt(ctx.db, member_id, at);
  return {
    balances,
    enrollments: enrolled.flatMap((e) =>
      e.program_id !== null && e.enrolled_at !== null && e.enrolled_at.getTime() <= at.getTime()
        ? [{ program_id: e.program_id, tier: tierThen(group, e.program_id, e.tier, tiers) }]
        : [],
    ),
    ...lotViews(group, lots, at),
  };
}

async function balancesAsOf(ctx: Ctx, member_id: string, at: Date): Promise<Map<string, ProgramBalance>> {
  const rows = await sql<{ program_id: string; kind: string; amount: bigint }>`
    select a.program_id, a.kind, coalesce(sum(p.amount_pt4), 0)::int8 as amount
    from accounts a join postings p on p.account_id = a.id and p.at <= ${at}
    where a.owner_id = ${member_id} and a.kind like 'member_%'
    group by a.program_id, a.kind`.execute(ctx.db);
  return fold(rows.rows);
}

function fold(
  rows: readonly { program_id: string; kind: string; amount: bigint }[],
): Map<string, ProgramBalance> {
  const out = new Map<string, ProgramBalance>();
  for (const r of rows) {
    const b = out.get(r.program_id) ?? zero(r.program_id);
    if (r.kind === 'member_available') b.available_pt4 += r.amount;
    if (r.kind === 'member_pending') b.pending_pt4 += r.amount;
    if (r.kind === 'member_held') b.held_pt4 += r.amount;
    out.set(r.program_id, b);
  }
  return out;
}

const PENDING_LOTS_SHOWN = 100;

/** expiring, pending lots and expired-not-swept from the lots as they stood at `at`, as the current read renders them. */
function lotViews(group: Group, lots: readonly LotThen[], at: Date) {
  const expiring: Record<string, { points: number; expires_at: string; id: bigint }[]> = {};
  const pending: Record<string, { points: number; available_at: string }[]> = {};
  const expired = new Map<string, Expired>();
  for (const l of lots) {
    const program = group.programs.get(l.program_id);
    const free = freeThen(l);
    const expiredThen = l.expires_at !== null && l.expires_at.getTime() <= at.getTime();
    if (expiredThen && free > 0n) {
      const x = expired.get(l.program_id) ?? { available_pt4: 0n, pending_pt4: 0n };
      if (l.pending) x.pending_pt4 += free;
      else x.available_pt4 += free;
      expired.set(l.program_id, x);
    }
    if (l.pending) {
      const list = (pending[l.program_id] ??= []);
      if (list.length < PENDING_LOTS_SHOWN)
        list.push({ points: pt4ToJson(l.remaining_pt4), available_at: l.available_at.toISOString() });
    } else if (
      program &&
      !expiredThen &&
      free > 0n &&
      l.expires_at !== null &&
      l.expires_at.getTime() <= at.getTime() + program.expiring_window_days * 86_400_000
    ) {
      (expiring[l.program_id] ??= []).push({
        points: pt4ToJson(free),
        expires_at: l.expires_at.toISOString(),
        id: l.id,
      });
    }
  }
  const byExpiry: Record<string, { points: number; expires_at: string }[]> = {};
  for (const [id, list] of Object.entries(expiring))
    byExpiry[id] = list
      .sort((a, b) =>
        a.expires_at < b.expires_at ? -1 : a.expires_at > b.expires_at ? 1 : a.id < b.id ? -1 : 1,
      )
      .map(({ points, expires_at }) => ({ points, expires_at }));
  return { expiring: byExpiry, pending, expired };
}
