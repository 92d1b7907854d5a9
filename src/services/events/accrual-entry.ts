import type { CompiledProgram } from '../../domain/config/group.ts';
import type { StoreConfig } from '../../domain/config/schema.ts';
import { roundRatio } from '../../domain/decimal.ts';
import { ratioFromJson } from '../../domain/earn/codec.ts';
import type { EarnExplanation } from '../../domain/earn/types.ts';
import type { CanonicalEvent } from '../../domain/events/canonical.ts';
import { computeExpiresAt, DAY_MS } from '../../domain/expiry.ts';
import { pt4ToJson } from '../../domain/points.ts';
import { memberAccount, systemAccount } from '../../ledger/accounts.ts';
import type { EntryInput, FloorMove, NewLot, PostingInput } from '../../ledger/entry.ts';
import type { Actor } from '../context.ts';
import type { AccrualView, ProgramEarn } from './accrue.ts';

// The ledger entry of one purchase, built without I/O from what it earned in each program and
// the member's recorded debts. Shared by the single-event path and the batch path, so both post
// exactly the same entry for the same event.

export interface AccrualPlan {
  readonly entry: EntryInput | null;
  readonly accruals: AccrualView[];
  readonly explanations: Record<string, EarnExplanation>;
  readonly spend_minor: Map<string, bigint>;
  readonly floors: FloorMove[];
}

/**
 * `debt_pt4(program_id)`: what the member owes there (−floor of the available account), >= 0.
 * `deadline_ms(program_id)`: the member's current inactivity deadline there (inactivity.ts
 * inactivityDeadlineQuery), or null.
 */
export function buildAccrual(
  ev: CanonicalEvent,
  store: StoreConfig,
  now: Date,
  earns: readonly ProgramEarn[],
  debt_pt4: (program_id: string) => bigint,
  actor: Actor,
  deadline_ms: (program_id: string) => number | null,
): AccrualPlan {
  const at = new Date(ev.transaction_ms);
  const postings: PostingInput[] = [];
  const lots: NewLot[] = [];
  const floors: FloorMove[] = [];
  const accruals: AccrualView[] = [];
  for (const { program, tier, earn } of earns) {
    const points = earn.points_pt4;
    const available_at = new Date(at.getTime() + program.pending_days * DAY_MS);
    const pending = available_at.getTime() > now.getTime();
    const tierCfg = program.tiers.find((t) => t.id === tier);
    const expiresMs = lotExpiry(program, at.getTime(), tierCfg?.expiry_days, deadline_ms(program.id));
    const expires_at = expiresMs === null ? null : new Date(expiresMs);
    accruals.push({
      program_id: program.id,
      points: pt4ToJson(points),
      status: pending ? 'pending' : 'available',
      available_at: available_at.toISOString(),
      expires_at: expires_at?.toISOString() ?? null,
      rules_applied: [...earn.rules_applied],
      tier,
    });
    if (points <= 0n) continue;
    // A recorded reversal shortfall is paid down first by available points (DESIGN: later accruals pay it down).
    const debt = pending ? 0n : debt_pt4(program.id);
    const paydown = debt > 0n ? (points < debt ? points : debt) : 0n;
    postings.push({
      account: memberAccount(program.id, ev.member_id, pending ? 'member_pending' : 'member_available'),
      amount_pt4: points,
    });
    postings.push({ account: systemAccount(program.id, 'issuance', store.brand), amount_pt4: -points });
    if (paydown > 0n)
      floors.push({
        account: memberAccount(program.id, ev.member_id, 'member_available'),
        delta_pt4: paydown,
      });
    lots.push({
      program_id: program.id,
      member_id: ev.member_id,
      issuing_brand_id: store.brand,
      points_pt4: points,
      remaining_pt4: points - paydown,
      state: pending ? 'pending' : 'available',
      awarded_at: at,
      available_at,
      expires_at,
      source_event_id: ev.event_id,
    });
  }
  const explanations = Object.fromEntries(earns.map((e) => [e.program.id, e.earn.explanation]));
  const spend_minor = new Map(
    earns.map((e) => [
      e.program.id,
      roundRatio(ratioFromJson(e.earn.explanation.eligible_amount_minor), 'floor'),
    ]),
  );
  const entry: EntryInput | null =
    postings.length === 0
      ? null
      : {
          kind: 'accrual',
          member_id: ev.member_id,
          at: now,
          event_id: ev.event_id,
          request_id: actor.request_id,
          key_id: actor.key_id,
          detail: { event_id: ev.event_id, store_id: ev.store_id, earn: explanations },
          postings,
          new_lots: lots,
          floor_moves: floors,
        };
  return { entry, accruals, explanations, spend_minor, floors };
}

/**
 * A new lot's expiry. Under an inactivity policy every open lot expires `days` after the member's
 * latest activity, so a lot earned by a late event (dated before that activity) expires with the
 * member's other lots, at their current deadline, rather than alone and earlier; it is never
 * pulled in below its own transaction time + days. A tier's expiry_days is a rolling rule of its
 * own and is kept as it is.
 */
export function lotExpiry(
  program: Pick<CompiledProgram, 'expiry'>,
  at_ms: number,
  tier_expiry_days: number | undefined,
  deadline_ms: number | null,
): number | null {
  const own = computeExpiresAt(
    program.expiry,
    at_ms,
    tier_expiry_days !== undefined ? { tier_expiry_days } : {},
  );
  if (program.expiry.kind !== 'inactivity' || tier_expiry_days !== undefined) return own;
  return own !== null && deadline_ms !== null && deadline_ms > own ? deadline_ms : own;
}
