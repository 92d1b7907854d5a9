import { sql } from 'kysely';
import { fxFactor } from '../../domain/config/fx.ts';
import type { CompiledProgram, Group } from '../../domain/config/group.ts';
import type { StoreConfig } from '../../domain/config/schema.ts';
import { calculateEarn } from '../../domain/earn/index.ts';
import type { EarnExplanation, EarnResult } from '../../domain/earn/types.ts';
import type { CanonicalEvent } from '../../domain/events/canonical.ts';
import type { Pt4 } from '../../domain/points.ts';
import type { FloorMove } from '../../ledger/entry.ts';
import { idsOf, postEntry, reserveIds, type Trx } from '../../ledger/post.ts';
import { memberStateOf, memberStateQuery } from '../../ledger/read.ts';
import { deferWrite, prefetch } from '../../store/write-behind.ts';
import type { Actor } from '../context.ts';
import { prefetchUpgrade, tiersAtQuery, upgradeIfQualified, type UpgradeReads } from '../tiers.ts';
import { baseTier, tierMetric } from '../../domain/tiers.ts';
import { buildAccrual } from './accrual-entry.ts';
import { EventRejected } from './rejected.ts';
import { extendInactivityExpiry, inactivityDeadlineQuery } from './inactivity.ts';

// purchase_completed: the store's brand program and the group's default program each earn by
// their own rules, in one ledger entry (balanced per program), one lot per program.

export interface AccrualView {
  program_id: string;
  points: number;
  status: 'available' | 'pending';
  available_at: string;
  expires_at: string | null;
  rules_applied: string[];
  tier: string | null;
}

export interface ProgramEarn {
  readonly program: CompiledProgram;
  readonly tier: string | null;
  readonly earn: EarnResult;
}

/** The programs a purchase at this store accrues in: the brand's, then the default program. */
export function programsForStore(group: Group, store: StoreConfig): CompiledProgram[] {
  const brand = group.brands.get(store.brand);
  const ids = [brand?.program, group.default_program_id].filter((x): x is string => !!x);
  return [...new Set(ids)].map((id) => {
    const p = group.programs.get(id);
    if (!p) throw new Error(`config: program ${id} missing`);
    return p;
  });
}

/** What the event earns in each program; pure apart from reading tiers. */
export async function computeEarn(
  group: Group,
  ev: CanonicalEvent,
  store: StoreConfig,
  tierOf: (program_id: string) => Promise<string | null>,
): Promise<ProgramEarn[]> {
  const out: ProgramEarn[] = [];
  for (const program of programsForStore(group, store)) {
    let fx;
    try {
      fx = fxFactor(ev.currency, program.currency, group, ev.transaction_ms);
    } catch {
      throw new EventRejected(
        'CURRENCY_MISMATCH',
        'currency',
        `No exchange rate from ${ev.currency} to ${program.currency} at ${ev.transaction_ts}`,
      );
    }
    // A program without tiers has no tier to look up (the default program never has one). With
    // no tier recorded at the event's time, the member still holds the base tier: this purchase
    // enrolls them if nothing did before, and a later-dated purchase that arrived first started
    // the tier's history after this one. So a base tier's rules do not depend on arrival order.
    const tier = program.tiers.length > 0 ? ((await tierOf(program.id)) ?? baseTier(program.tiers)) : null;
    const earn = calculateEarn({
      program,
      event: {
        event_id: ev.event_id,
        channel: ev.channel,
        store_id: ev.store_id,
        transaction_ts: ev.transaction_ts,
        currency: ev.currency,
        subtotal_cents: ev.subtotal_cents,
        eligible_subtotal_cents: ev.eligible_subtotal_cents,
        line_items: ev.line_items,
        raw: ev.raw,
      },
      store: { id: store.id, brand: store.brand, channel: store.channel },
      member: { id: ev.member_id, tier },
      fx_to_program: fx,
    });
    if (earn.points_pt4 > MAX_EVENT_EARN_PT4 || earn.points_pt4 < -MAX_EVENT_EARN_PT4)
      throw new EventRejected(
        'INVALID_EVENT',
        'subtotal_cents',
        `The event would earn more than ${MAX_EVENT_EARN_POINTS} points in ${program.id}: check the amount, or the program's earn rate and rules`,
      );
    out.push({ program, tier, earn });
  }
  return out;
}

// One event earns at most 10^12 points in a program. The configuration's decimals are exact and
// unbounded, so an earn rate of 10^29 points would compute a number no ledger account can hold
// (postings stop at 10^13 points, ledger/entry.ts); the event is refused and kept as a rejection
// that names the amount, instead of failing as an unexplained ledger error.
const MAX_EVENT_EARN_POINTS = 1_000_000_000_000n;
const MAX_EVENT_EARN_PT4 = MAX_EVENT_EARN_POINTS * 10_000n;

export interface AccrueResult {
  readonly entry_id: bigint | null;
  readonly accruals: AccrualView[];
  readonly earns: Record<string, EarnExplanation>;
  readonly spend_minor: Map<string, bigint>;
}

export async function accruePurchase(
  trx: Trx,
  group: Group,
  ev: CanonicalEvent,
  store: StoreConfig,
  now: Date,
  actor: Actor,
): Promise<AccrueResult> {
  const at = new Date(ev.transaction_ms);
  // Everything the accrual reads is queued and read at once, with the member lock and enrollment
  // the caller queued before (store/write-behind.ts): the tiers the rules need, the member's
  // debts, and what an immediate tier upgrade needs.
  const programs = programsForStore(group, store);
  const tiered = programs.filter((p) => p.tiers.length > 0).map((p) => p.id);
  const tierRows = await prefetch(trx, tiersAtQuery(trx, ev.member_id, tiered, at));
  const accountRows = await prefetch(trx, memberStateQuery(trx, ev.member_id));
  const inactive = programs.filter((p) => p.expiry.kind === 'inactivity').map((p) => p.id);
  const deadlineRows =
    inactive.length > 0
      ? await prefetch(trx, inactivityDeadlineQuery(trx, ev.member_id, inactive, now))
      : null;
  const upgrades = new Map<string, UpgradeReads>();
  for (const p of programs) {
    const reads = await prefetchUpgrade(trx, ev.member_id, p, at);
    if (reads) upgrades.set(p.id, reads);
  }
  const ids = await reserveIds(trx, 1, programs.length);
  const tiers = new Map((await tierRows.rows()).map((r) => [r.program_id, r.tier]));
  const earns = await computeEarn(group, ev, store, async (pid) => tiers.get(pid) ?? null);
  const state = memberStateOf(await accountRows.rows());
  const deadlines = new Map(
    (deadlineRows ? await deadlineRows.rows() : []).map((r) => [r.program_id, r.deadline]),
  );
  const plan = buildAccrual(
    ev,
    store,
    now,
    earns,
    (pid) => -(state.get(pid)?.floor_pt4 ?? 0n),
    actor,
    (pid) => (deadlines.has(pid) ? new Date(deadlines.get(pid)!).getTime() : null),
  );
  const { accruals, explanations, spend_minor: spend } = plan;
  let entry_id: bigint | null = null;
  if (plan.entry) {
    entry_id = (await postEntry(trx, plan.entry, idsOf(await ids.rows()))).entry_id;
    await resolvePaidDebts(trx, ev.member_id, plan.floors, now);
  }
  await recordActivity(
    trx,
    ev.member_id,
    earns.map((e) => ({
      program_id: e.program.id,
      spend_minor: spend.get(e.program.id) ?? 0n,
      points_pt4: e.earn.points_pt4,
    })),
    at,
    ev.event_id,
    entry_id,
  );
  for (const { program, earn } of earns) {
    const reads = upgrades.get(program.id);
    const added =
      tierMetric(program.tiers) === 'spend_minor' ? (spend.get(program.id) ?? 0n) : earn.points_pt4;
    const upgraded = reads
      ? await upgradeIfQualified(trx, ev.member_id, program, at, now, reads, added)
      : null;
    if (upgraded) {
      const view = accruals.find((a) => a.program_id === program.id);
      if (view) view.tier = upgraded;
    }
    await extendInactivityExpiry(trx, ev.member_id, program, at, now);
  }
  return { entry_id, accruals, earns: explanations, spend_minor: spend };
}

export async function recordActivity(
  trx: Trx,
  member_id: string,
  rows: readonly { program_id: string; spend_minor: bigint; points_pt4: Pt4 }[],
  at: Date,
  event_id: string,
  entry_id: bigint | null,
): Promise<void> {
  const values = rows
    .filter((r) => r.spend_minor !== 0n || r.points_pt4 !== 0n)
    .map((r) => ({
      member_id,
      program_id: r.program_id,
      at,
      spend_minor: r.spend_minor,
      points_pt4: r.points_pt4,
      event_id,
      entry_id,
    }));
  if (values.length > 0) await deferWrite(trx, trx.insertInto('program_activity').values(values));
}

/** Closes the review of a negative balance once accruals have paid it back to zero. */
export async function resolvePaidDebts(
  trx: Trx,
  member_id: string,
  floors: readonly FloorMove[],
  now: Date,
  resolution = 'paid down by accruals',
): Promise<void> {
  for (const f of floors) {
    if (f.delta_pt4 <= 0n) continue;
    const acc = await trx
      .selectFrom('accounts')
      .select('floor_pt4')
      .where('owner_id', '=', member_id)
      .where('program_id', '=', f.account.program_id)
      .where('kind', '=', 'member_available')
      .executeTakeFirst();
    if (acc && acc.floor_pt4 === 0n) {
      const close = trx
        .updateTable('reviews')
        // Merged into the item's detail: why it was opened (reversal_of, reason) stays on record.
        .set({
          status: 'resolved',
          detail:
            sql`detail || ${JSON.stringify({ resolved_at: now.toISOString(), resolution })}::jsonb` as never,
        })
        .where('member_id', '=', member_id)
        .where('program_id', '=', f.account.program_id)
        .where('kind', '=', 'negative_balance')
        .where('status', '=', 'open');
      await deferWrite(trx, close);
    }
  }
}
