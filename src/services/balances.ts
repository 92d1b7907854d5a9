import { TAKING_KINDS_SQL as TAKING } from '../ledger/read.ts';
import { sql } from 'kysely';
import type { Group } from '../domain/config/group.ts';
import { currencyExponent } from '../domain/config/fx.ts';
import { mul } from '../domain/decimal.ts';
import { valueMinor } from '../domain/lots/conversion.ts';
import { poolInDefaultPoints } from '../domain/lots/group-plan.ts';
import { pt4ToJson, pt4ToRatio } from '../domain/points.ts';
import { moneyJson, programUnits, valueInProgramCurrency } from '../domain/valuation.ts';
import { AppError } from '../errors.ts';
import { readCurrent } from './balances-current.ts';
import type { Ctx } from './context.ts';
import { requireGroup } from './config.ts';

// The contract's balances view. Without as_of (or with one not in the past) it reads the running
// balances and the lots' running remaining, in one statement (balances-current.ts); with a past
// as_of it sums the member's postings up to that instant and rebuilds each lot's remaining from
// its allocations, so the answer comes from the ledger as it stood then. Both paths feed the
// same assembly below, so they can only differ in what they read.

interface ProgramBalance {
  program_id: string;
  available_pt4: bigint;
  pending_pt4: bigint;
  held_pt4: bigint;
}

/** What the answer is assembled from, whichever path read it. */
interface BalanceInputs {
  readonly balances: Map<string, ProgramBalance>;
  /** The enrollments in force at the instant asked about. */
  readonly enrollments: readonly { readonly program_id: string; readonly tier: string | null }[];
  readonly expiring: Readonly<Record<string, { points: number; expires_at: string }[]>>;
  readonly pending: Readonly<Record<string, { points: number; available_at: string }[]>>;
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
  const { balances } = inp;
  const programs = inp.enrollments
    .filter((e) => group.programs.has(e.program_id))
    .sort((a, b) => a.program_id.localeCompare(b.program_id))
    .map((e) => {
      const program = group.programs.get(e.program_id)!;
      const b = balances.get(e.program_id) ?? zero(e.program_id);
      return {
        program_id: e.program_id,
        brand_id: program.brand_id,
        tier: e.tier,
        available: pt4ToJson(b.available_pt4),
        pending: pt4ToJson(b.pending_pt4),
        held: pt4ToJson(b.held_pt4),
        pending_lots: inp.pending[e.program_id] ?? [],
        expiring: inp.expiring[e.program_id] ?? [],
        value: moneyJson(valueInProgramCurrency(program, b.available_pt4 > 0n ? b.available_pt4 : 0n)),
      };
    });

  const units = programUnits(group, at.getTime());
  const defaultUnit = units.get(group.default_program_id)!;
  const byProgram = new Map([...balances.values()].map((b) => [b.program_id, b.available_pt4] as const));
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
  return {
    balances: fold(r.accounts.map(([program_id, kind, pt4]) => ({ program_id, kind, amount: BigInt(pt4) }))),
    enrollments: r.enrollments.map(([program_id, tier]) => ({ program_id, tier })),
    expiring: r.expiring,
    pending: r.pending,
  };
}

// As of a past instant: the member and its enrollments, the postings' sums, the lots' remaining
// rebuilt from allocations, and the pending lots of every program, in four statements.
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
  const balances = await balancesAsOf(ctx, member_id, at);
  const expiring = await expiringAsOf(ctx, member_id, at, group);
  const pending = await pendingAsOf(ctx, member_id, at);
  return {
    balances,
    enrollments: enrolled.flatMap((e) =>
      e.program_id !== null && e.enrolled_at !== null && e.enrolled_at.getTime() <= at.getTime()
        ? [{ program_id: e.program_id, tier: e.tier }]
        : [],
    ),
    expiring,
    pending,
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

/** Lots expiring within each program's window after `at`, lot by lot, as they stood at `at`. */
async function expiringAsOf(ctx: Ctx, member_id: string, at: Date, group: Group) {
  const maxDays = Math.max(90, ...[...group.programs.values()].map((p) => p.expiring_window_days));
  const until = new Date(at.getTime() + maxDays * 86_400_000);
  // Each lot's remaining rebuilt from the allocations posted by then.
  const rows = await sql<{ id: bigint; program_id: string; expires_at: Date; remaining: bigint }>`
    select l.id, l.program_id, l.expires_at,
      (l.points_pt4 - coalesce(sum(case when a.kind in (${TAKING}) then a.points_pt4
                                       when a.kind = 'restore' then -a.points_pt4 else 0 end), 0))::int8 as remaining
    from lots l
    left join lot_allocations a on a.lot_id = l.id
      and exists (select 1 from entries e where e.id = a.entry_id and e.at <= ${at})
    where l.member_id = ${member_id} and l.expires_at > ${at} and l.expires_at <= ${until} and l.awarded_at <= ${at}
    group by l.id
    order by l.expires_at, l.id`.execute(ctx.db);
  const out: Record<string, { points: number; expires_at: string }[]> = {};
  for (const r of rows.rows) {
    const program = group.programs.get(r.program_id);
    if (!program || r.remaining <= 0n) continue;
    if (r.expires_at.getTime() > at.getTime() + program.expiring_window_days * 86_400_000) continue;
    (out[r.program_id] ??= []).push({
      points: pt4ToJson(r.remaining),
      expires_at: r.expires_at.toISOString(),
    });
  }
  return out;
}

/** Up to 100 pending lots per program awarded by `at`, in the order they become available. */
async function pendingAsOf(ctx: Ctx, member_id: string, at: Date) {
  const rows = await sql<{ program_id: string; points_pt4: bigint; available_at: Date }>`
    select program_id, points_pt4, available_at from (
      select program_id, remaining_pt4 as points_pt4, available_at, id,
        row_number() over (partition by program_id order by available_at, id) as n
      from lots
      where member_id = ${member_id} and state = 'pending' and open and awarded_at <= ${at}) q
    where n <= 100
    order by program_id, available_at, id`.execute(ctx.db);
  const out: Record<string, { points: number; available_at: string }[]> = {};
  for (const r of rows.rows)
    (out[r.program_id] ??= []).push({
      points: pt4ToJson(r.points_pt4),
      available_at: r.available_at.toISOString(),
    });
  return out;
}
