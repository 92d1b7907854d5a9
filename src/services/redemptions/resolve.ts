import type { Group } from '../../domain/config/group.ts';
import { ZERO, type Ratio } from '../../domain/decimal.ts';
import { ratioFromJson, ratioToJson } from '../../domain/earn/codec.ts';
import { planGroupSpend } from '../../domain/lots/group-plan.ts';
import { unitsAtHold } from '../../domain/lots/hold-units.ts';
import { pt4ToJson, type Pt4 } from '../../domain/points.ts';
import { programUnits } from '../../domain/valuation.ts';
import { AppError } from '../../errors.ts';
import { memberAccount, systemAccount } from '../../ledger/accounts.ts';
import type { LotMove, PostingInput } from '../../ledger/entry.ts';
import { postEntry, type Trx } from '../../ledger/post.ts';
import { requireGroup } from '../config.ts';
import type { Actor, Ctx } from '../context.ts';
import { inTransaction, PREPARED } from '../transaction.ts';
import { lockRedemption } from './lock.ts';
import { remainingBalances } from './spendable.ts';
import { reclaimedView, reclaimReturned, resolveRepaidDebts } from './reclaim.ts';
import { creditReturned, returnMoveBase } from './returned-points.ts';
import { returnRewardStock } from './rewards.ts';
import { checkPrecision } from './spend-plan.ts';
import { recordSettlement } from './settlement.ts';

// A hold is resolved exactly once: captured (in whole or in part, the rest released), released,
// or expired by its timeout. The status moves by a conditional update `where status = 'held'`
// under the member's lock, so a second resolution, concurrent or late, is refused.

export type Resolution = 'capture' | 'release' | 'expire';

interface HeldAllocation {
  lot_id: bigint;
  program_id: string;
  issuing_brand_id: string;
  points_pt4: Pt4;
  value_common: string | null;
  expires_at: Date | null;
  awarded_at: Date;
}

export async function resolveHold(
  ctx: Ctx,
  redemption_id: string,
  how: Resolution,
  actor: Actor,
  capture_points_pt4?: Pt4,
): Promise<Record<string, unknown>> {
  const group = await requireGroup(ctx);
  const outcome = await inTransaction(
    ctx.db,
    async (trx) => {
      const now = ctx.clock.now();
      const r = await lockRedemption(trx, redemption_id);
      if (r.status !== 'held')
        throw new AppError('HOLD_ALREADY_RESOLVED', `Redemption ${redemption_id} is ${r.status}`, {
          redemption_id,
          status: r.status,
        });
      const timedOut = r.hold_expires_at !== null && r.hold_expires_at.getTime() <= now.getTime();
      // A capture that arrives after the timeout finds the hold expired: expire it, then refuse.
      const effective: Resolution = how === 'capture' && timedOut ? 'expire' : how;
      const result = await applyResolution(trx, group, r, effective, now, actor, capture_points_pt4);
      return { effective, result };
    },
    PREPARED,
  );
  if (how === 'capture' && outcome.effective === 'expire') {
    throw new AppError(
      'HOLD_ALREADY_RESOLVED',
      `Redemption ${redemption_id} hold timed out and was released`,
      { redemption_id, status: 'expired' },
    );
  }
  return outcome.result;
}

export async function applyResolution(
  trx: Trx,
  group: Group,
  r: {
    id: string;
    member_id: string;
    brand_id: string;
    points_pt4: bigint;
    group_redemption: boolean;
    program_id: string | null;
    reward_id?: string | null;
    quantity?: number | null;
    /** The redemption's detail: what its hold overpaid by rounding (a partial capture needs it). */
    detail?: unknown;
  },
  how: Resolution,
  now: Date,
  actor: Actor,
  capture_points_pt4?: Pt4,
): Promise<Record<string, unknown>> {
  // A reward's stock was taken for its whole quantity at its price: part of the points would buy
  // part of a reward. Capture it whole, or release it.
  if (
    how === 'capture' &&
    r.reward_id &&
    capture_points_pt4 !== undefined &&
    capture_points_pt4 !== r.points_pt4
  )
    throw new AppError(
      'INVALID_AMOUNT',
      `A reward hold is captured whole (${pt4ToJson(r.points_pt4)} points for ${r.quantity ?? 1} × ${r.reward_id}), or released`,
      { field: 'points', points: pt4ToJson(r.points_pt4) },
    );
  const held = await heldAllocations(trx, r.id);
  const { capture, release, rounding } =
    how === 'capture'
      ? splitCapture(group, r, held, capture_points_pt4 ?? r.points_pt4, now)
      : { capture: [], release: held, rounding: {} };
  const postings: PostingInput[] = [];
  const moves: LotMove[] = [];
  for (const a of capture) {
    postings.push({
      account: memberAccount(a.program_id, r.member_id, 'member_held'),
      amount_pt4: -a.points_pt4,
    });
    postings.push({
      account: systemAccount(a.program_id, 'redemption', r.brand_id),
      amount_pt4: a.points_pt4,
    });
    moves.push({
      lot_id: a.lot_id,
      program_id: a.program_id,
      member_id: r.member_id,
      issuing_brand_id: a.issuing_brand_id,
      kind: 'capture',
      points_pt4: a.points_pt4,
      remaining_delta_pt4: -a.points_pt4,
      held_delta_pt4: -a.points_pt4,
      state_from: 'available',
      value_common: a.value_common,
    });
  }
  const credited: HeldAllocation[] = [];
  for (const a of release) {
    postings.push({
      account: memberAccount(a.program_id, r.member_id, 'member_held'),
      amount_pt4: -a.points_pt4,
    });
    moves.push({
      ...returnMoveBase(a, r.member_id),
      kind: 'release',
      remaining_delta_pt4: 0n,
      held_delta_pt4: -a.points_pt4,
    });
    // Points released from a lot that expired while they were held expire at once.
    if (!creditReturned(a, r.member_id, now, postings, moves)) credited.push(a);
  }
  const reclaimed = await reclaimReturned(trx, r.member_id, credited);
  postings.push(...reclaimed.postings);
  moves.push(...reclaimed.moves);
  const status = how === 'capture' ? 'captured' : how === 'release' ? 'released' : 'expired';
  const updated = await trx
    .updateTable('redemptions')
    .set({ status, resolved_at: now })
    .where('id', '=', r.id)
    .where('status', '=', 'held')
    .executeTakeFirst();
  if (updated.numUpdatedRows !== 1n)
    throw new AppError('HOLD_ALREADY_RESOLVED', `Redemption ${r.id} was already resolved`, {
      redemption_id: r.id,
    });
  const posted = await postEntry(trx, {
    kind: how === 'capture' ? 'capture' : 'release',
    member_id: r.member_id,
    at: now,
    request_id: actor.request_id,
    key_id: actor.key_id,
    ref_type: 'redemption',
    ref_id: r.id,
    // `captured`: in the redemption's own points, which GET /v1/redemptions/{id} shows.
    detail: {
      redemption_id: r.id,
      resolution: status,
      ...(how === 'capture' ? { captured: pt4ToJson(capture_points_pt4 ?? r.points_pt4) } : {}),
      ...rounding,
    },
    postings,
    lot_moves: moves,
    floor_moves: reclaimed.floors,
  });
  await resolveRepaidDebts(trx, r.member_id, reclaimed, now);
  if (how !== 'capture') await returnRewardStock(trx, r.reward_id, r.quantity, now);
  if (capture.length > 0) await recordSettlement(trx, group, r.id, r.brand_id, posted.entry_id, now);
  const captured = capture.reduce((s, a) => s + a.points_pt4, 0n);
  return {
    redemption_id: r.id,
    status,
    points_captured_by_program: summarize(capture),
    points_released_by_program: summarize(release).map((p) => ({
      ...p,
      ...reclaimedView(reclaimed.byProgram.get(p.program_id)),
    })),
    captured: pt4ToJson(how === 'capture' ? (capture_points_pt4 ?? r.points_pt4) : 0n),
    captured_program_points: pt4ToJson(captured),
    balances: await remainingBalances(trx, r.member_id),
  };
}

function summarize(list: readonly HeldAllocation[]): { program_id: string; points: number }[] {
  const m = new Map<string, Pt4>();
  for (const a of list) m.set(a.program_id, (m.get(a.program_id) ?? 0n) + a.points_pt4);
  return [...m]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([program_id, p]) => ({ program_id, points: pt4ToJson(p) }));
}

/** What each held lot still holds for this redemption: its holds minus releases and captures. */
async function heldAllocations(trx: Trx, redemption_id: string): Promise<HeldAllocation[]> {
  const rows = await trx
    .selectFrom('lot_allocations as a')
    .innerJoin('entries as e', 'e.id', 'a.entry_id')
    .innerJoin('lots as l', 'l.id', 'a.lot_id')
    .select([
      'a.lot_id',
      'a.program_id',
      'a.issuing_brand_id',
      'a.kind',
      'a.points_pt4',
      'a.value_common',
      'l.expires_at',
      'l.awarded_at',
    ])
    .where('e.ref_type', '=', 'redemption')
    .where('e.ref_id', '=', redemption_id)
    .where('a.kind', 'in', ['hold', 'release', 'capture'])
    .orderBy('a.id')
    .execute();
  const byLot = new Map<string, HeldAllocation>();
  for (const row of rows) {
    const key = String(row.lot_id);
    const cur = byLot.get(key) ?? {
      lot_id: row.lot_id,
      program_id: row.program_id,
      issuing_brand_id: row.issuing_brand_id,
      points_pt4: 0n,
      value_common: row.value_common,
      expires_at: row.expires_at,
      awarded_at: row.awarded_at,
    };
    cur.points_pt4 += row.kind === 'hold' ? row.points_pt4 : -row.points_pt4;
    byLot.set(key, cur);
  }
  return [...byLot.values()].filter((a) => a.points_pt4 > 0n);
}

/** A capture of less than was held takes the held lots in FEFO order; the rest is released. */
function splitCapture(
  group: Group,
  r: { points_pt4: bigint; group_redemption: boolean; program_id: string | null; detail?: unknown },
  held: readonly HeldAllocation[],
  want_pt4: Pt4,
  now: Date,
): { capture: HeldAllocation[]; release: HeldAllocation[]; rounding: CaptureRounding } {
  if (want_pt4 <= 0n || want_pt4 > r.points_pt4) {
    throw new AppError(
      'INVALID_AMOUNT',
      `A capture takes between 0 and the ${pt4ToJson(r.points_pt4)} points held`,
      { field: 'points' },
    );
  }
  if (want_pt4 === r.points_pt4) return { capture: [...held], release: [], rounding: {} };
  const unit_program = r.group_redemption
    ? group.default_program_id
    : (r.program_id ?? group.default_program_id);
  // In the redemption's own points, as a redemption of that amount would be asked for.
  checkPrecision(group, unit_program, want_pt4);
  const today = programUnits(group, now.getTime());
  const units =
    unitsAtHold(
      held.map((a) => ({
        program_id: a.program_id,
        points_pt4: a.points_pt4,
        value: a.value_common === null ? null : ratioFromJson(a.value_common),
      })),
      { unit_program_id: unit_program, points_pt4: r.points_pt4, overpaid_value: overpaidOf(r.detail) },
      (program_id) => today.get(program_id)?.precision ?? 'whole',
    ) ?? today;
  const plan = planGroupSpend({
    lots: held.map((a) => ({
      id: String(a.lot_id),
      program_id: a.program_id,
      issuing_brand_id: a.issuing_brand_id,
      spendable_pt4: a.points_pt4,
      expires_at_ms: a.expires_at?.getTime() ?? null,
      awarded_at_ms: a.awarded_at.getTime(),
    })),
    programs: units,
    default_program_id: unit_program,
    points_pt4: want_pt4,
  });
  // A part of a hold is taken like a spend, at the hold's own units (domain/lots/hold-units.ts):
  // its last lot rounded up, so the capture is worth at least `want` (audit F1). A hold covers its
  // whole request, so it covers any part of it at those units; only a hold placed before that
  // rule (rounded down, worth less than its request) or recorded without its worth, valued today,
  // can fall short of `want`: then all of it is captured.
  if (plan.allocations.length === 0) return { capture: [...held], release: [], rounding: {} };
  const taken = new Map(plan.allocations.map((a) => [a.lot_id, a]));
  const capture: HeldAllocation[] = [];
  const release: HeldAllocation[] = [];
  for (const a of held) {
    const t = taken.get(String(a.lot_id));
    const c = t?.points_pt4 ?? 0n;
    if (c > 0n)
      capture.push({ ...a, points_pt4: c, value_common: t ? ratioToJson(t.value) : a.value_common });
    if (a.points_pt4 - c > 0n) release.push({ ...a, points_pt4: a.points_pt4 - c });
  }
  return {
    capture,
    release,
    rounding: {
      overpaid_value: ratioToJson(plan.overpaid_value),
      rounding_program_id: plan.rounding_program_id,
    },
  };
}

/** What the hold overpaid by rounding its last lot up, from the redemption's detail (spend-plan.ts). */
function overpaidOf(detail: unknown): Ratio {
  const v = (detail as { overpaid_value?: unknown } | null)?.overpaid_value;
  return typeof v === 'string' ? ratioFromJson(v) : ZERO;
}

/** What a partial capture's entry records of its rounding (empty when it took the hold as held). */
type CaptureRounding = { overpaid_value?: string; rounding_program_id?: string | null };
