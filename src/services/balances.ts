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
import type { Ctx } from './context.ts';
import { requireGroup } from './config.ts';

// The contract's balances view. Without as_of it reads the running balances; with as_of it sums
// the member's postings up to that instant and rebuilds each lot's remaining from its
// allocations, so the answer comes from the ledger as it stood then.

interface ProgramBalance {
  program_id: string;
  available_pt4: bigint;
  pending_pt4: bigint;
  held_pt4: bigint;
}

export async function getBalances(ctx: Ctx, member_id: string, as_of?: Date) {
  const group = await requireGroup(ctx);
  const member = await ctx.db
    .selectFrom('members')
    .select('id')
    .where('id', '=', member_id)
    .executeTakeFirst();
  if (!member) throw new AppError('MEMBER_NOT_FOUND', undefined, { member_id });
  const at = as_of ?? ctx.clock.now();
  const historical = as_of !== undefined && as_of.getTime() < ctx.clock.now().getTime();
  const balances = historical
    ? await balancesAsOf(ctx, member_id, at)
    : await currentBalances(ctx, member_id);
  const enrollments = await ctx.db
    .selectFrom('enrollments')
    .select(['program_id', 'tier', 'enrolled_at'])
    .where('member_id', '=', member_id)
    .execute();
  const expiring = await expiringLots(ctx, member_id, at, group, historical);

  const programs = enrollments
    .filter((e) => !historical || e.enrolled_at.getTime() <= at.getTime())
    .filter((e) => group.programs.has(e.program_id))
    .sort((a, b) => a.program_id.localeCompare(b.program_id))
    .map((e) => {
      const program = group.programs.get(e.program_id)!;
      const b = balances.get(e.program_id) ?? {
        program_id: e.program_id,
        available_pt4: 0n,
        pending_pt4: 0n,
        held_pt4: 0n,
      };
      return {
        program_id: e.program_id,
        brand_id: program.brand_id,
        tier: e.tier,
        available: pt4ToJson(b.available_pt4),
        pending: pt4ToJson(b.pending_pt4),
        held: pt4ToJson(b.held_pt4),
        pending_lots: [] as { points: number; available_at: string }[],
        expiring: (expiring.get(e.program_id) ?? []).map((x) => ({
          points: pt4ToJson(x.points_pt4),
          expires_at: x.expires_at.toISOString(),
        })),
        value: moneyJson(valueInProgramCurrency(program, b.available_pt4 > 0n ? b.available_pt4 : 0n)),
      };
    });
  for (const p of programs)
    p.pending_lots = (await pendingLots(ctx, member_id, p.program_id, historical ? at : null)).map((l) => ({
      points: pt4ToJson(l.points_pt4),
      available_at: l.available_at.toISOString(),
    }));

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

async function currentBalances(ctx: Ctx, member_id: string): Promise<Map<string, ProgramBalance>> {
  const rows = await ctx.db
    .selectFrom('accounts')
    .select(['program_id', 'kind', 'balance_pt4'])
    .where('owner_id', '=', member_id)
    .where('kind', 'like', 'member_%')
    .execute();
  return fold(rows.map((r) => ({ program_id: r.program_id, kind: r.kind, amount: r.balance_pt4 })));
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
    const b = out.get(r.program_id) ?? {
      program_id: r.program_id,
      available_pt4: 0n,
      pending_pt4: 0n,
      held_pt4: 0n,
    };
    if (r.kind === 'member_available') b.available_pt4 += r.amount;
    if (r.kind === 'member_pending') b.pending_pt4 += r.amount;
    if (r.kind === 'member_held') b.held_pt4 += r.amount;
    out.set(r.program_id, b);
  }
  return out;
}

/** Lots expiring within each program's window after `at`, lot by lot, as they stood at `at`. */
async function expiringLots(ctx: Ctx, member_id: string, at: Date, group: Group, historical: boolean) {
  const maxDays = Math.max(90, ...[...group.programs.values()].map((p) => p.expiring_window_days));
  const until = new Date(at.getTime() + maxDays * 86_400_000);
  // Now: the lots' running remaining, through the member's open-lots index. As of a past
  // instant: each lot's remaining rebuilt from the allocations posted by then.
  const rows = historical
    ? await sql<{ id: bigint; program_id: string; expires_at: Date; remaining: bigint }>`
    select l.id, l.program_id, l.expires_at,
      (l.points_pt4 - coalesce(sum(case when a.kind in (${TAKING}) then a.points_pt4
                                       when a.kind = 'restore' then -a.points_pt4 else 0 end), 0))::int8 as remaining
    from lots l
    left join lot_allocations a on a.lot_id = l.id
      and exists (select 1 from entries e where e.id = a.entry_id and e.at <= ${at})
    where l.member_id = ${member_id} and l.expires_at > ${at} and l.expires_at <= ${until} and l.awarded_at <= ${at}
    group by l.id
    order by l.expires_at, l.id`.execute(ctx.db)
    : await sql<{ id: bigint; program_id: string; expires_at: Date; remaining: bigint }>`
    select id, program_id, expires_at, remaining_pt4 as remaining from lots
    where member_id = ${member_id} and remaining_pt4 > 0 and expires_at > ${at} and expires_at <= ${until}
    order by expires_at, id`.execute(ctx.db);
  const out = new Map<string, { points_pt4: bigint; expires_at: Date }[]>();
  for (const r of rows.rows) {
    const program = group.programs.get(r.program_id);
    if (!program || r.remaining <= 0n) continue;
    if (r.expires_at.getTime() > at.getTime() + program.expiring_window_days * 86_400_000) continue;
    const list = out.get(r.program_id) ?? [];
    list.push({ points_pt4: r.remaining, expires_at: r.expires_at });
    out.set(r.program_id, list);
  }
  return out;
}

async function pendingLots(ctx: Ctx, member_id: string, program_id: string, at: Date | null) {
  let q = ctx.db
    .selectFrom('lots')
    .select(['remaining_pt4 as points_pt4', 'available_at'])
    .where('member_id', '=', member_id)
    .where('program_id', '=', program_id)
    .where('state', '=', 'pending')
    .where('remaining_pt4', '>', 0n)
    .orderBy('available_at')
    .limit(100);
  if (at) q = q.where('awarded_at', '<=', at);
  return q.execute();
}
