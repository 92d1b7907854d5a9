import { sql } from 'kysely';
import type { Group } from '../../domain/config/group.ts';
import {
  add,
  cmp,
  div,
  mul,
  parseDecimal,
  ratio,
  roundRatio,
  ZERO,
  type Ratio,
} from '../../domain/decimal.ts';
import { ratioFromJson, ratioToJson, quantityRatio } from '../../domain/earn/codec.ts';
import { calculateRefund, calculateVoid, isRefundError } from '../../domain/earn/index.ts';
import type { EarnExplanation } from '../../domain/earn/types.ts';
import type { CanonicalEvent } from '../../domain/events/canonical.ts';
import { DAY_MS } from '../../domain/expiry.ts';
import { allocateFefo } from '../../domain/lots/fefo.ts';
import { pt4ToJson, type Pt4 } from '../../domain/points.ts';
import { memberAccount, systemAccount } from '../../ledger/accounts.ts';
import type { FloorMove, LotMove, PostingInput } from '../../ledger/entry.ts';
import { postEntry, type Trx } from '../../ledger/post.ts';
import { openLots, type OpenLot } from '../../ledger/read.ts';
import type { Actor } from '../context.ts';
import { spendable } from '../redemptions/spend-plan.ts';
import { reviewTier } from '../tiers.ts';
import { recordActivity } from './accrue.ts';
import { EventRejected } from './rejected.ts';

// purchase_voided / purchase_refunded: take back exactly what the reversed lines earned, in every
// program the purchase accrued in, by the explanation stored with the purchase (the rules of the
// program where it was made, as they were). What the member already spent is taken from the
// rest of their balance; a shortfall within the program's limit is written off, a larger one is
// a recorded negative balance with a review item. Buy → earn → redeem → refund never leaves the
// member ahead.

export interface ReversalState {
  /** Cumulative returned quantity per original line index. */
  returned: Record<number, number>;
  /** Cumulative spend (program minor units) taken off the tier metric, per program. */
  spend_removed: Record<string, string>;
  voided: boolean;
}

/**
 * A purchase's events.earn as stored. The earn explanations per program are kept once: in the
 * accrual entry's detail when the purchase posted one (storedEarn), here only when it did not
 * (nothing earned). Rows written before that rule carry them here as well.
 */
export interface StoredEarn {
  entry_id: string | null;
  programs?: Record<string, EarnExplanation>;
  reversal?: ReversalState;
}

/** What a purchase's events.earn holds: the entry's id, and the explanations when no entry does. */
export function storedEarn(
  entry_id: bigint | null,
  explanations: Record<string, EarnExplanation>,
): StoredEarn {
  return entry_id === null ? { entry_id: null, programs: explanations } : { entry_id: entry_id.toString() };
}

export interface StoredPurchase {
  event_id: string;
  member_id: string;
  brand_id: string;
  transaction_ts: Date;
  earn: StoredEarn;
  /** The earn explanation per program, from events.earn or the accrual entry's detail. */
  programs: Record<string, EarnExplanation>;
}

export interface ReversedView {
  program_id: string;
  points: number;
  from_pending: number;
  from_available: number;
  written_off: number;
  negative_balance: number;
}

export async function loadPurchase(
  trx: Trx,
  ev: CanonicalEvent,
  group: Group,
  now: Date,
): Promise<StoredPurchase> {
  // A reversal may name the id of an event answered as a duplicate of the purchase (the store's
  // own event for a BOPIS order the web shop sent first): it reverses that purchase.
  const target =
    (await purchaseRow(trx, ev.reversal_of!)) ??
    (await duplicateOf(trx, ev.reversal_of!).then((id) => (id ? purchaseRow(trx, id) : undefined)));
  if (!target || target.event_type !== 'purchase_completed' || !target.earn) {
    throw new EventRejected(
      'REVERSAL_TARGET_NOT_FOUND',
      'reversal_of',
      `No accepted purchase ${ev.reversal_of} to reverse`,
    );
  }
  if (target.member_id !== ev.member_id) {
    throw new EventRejected(
      'INVALID_EVENT',
      'member_id',
      `Purchase ${target.event_id} belongs to another member`,
    );
  }
  // The caller's key was checked against the reversal's store, so a reversal from another
  // brand's store would let that brand take back (and write off) this brand's points.
  const storeBrand = group.stores.get(ev.store_id)?.brand;
  if (storeBrand !== target.brand_id) {
    throw new EventRejected(
      'INVALID_EVENT',
      'store_id',
      `Purchase ${target.event_id} was made at brand ${target.brand_id}; reverse it from one of that brand's stores`,
    );
  }
  const brandProgram = group.programs.get(group.brands.get(target.brand_id)?.program ?? '');
  const lookback = brandProgram?.reversal_lookback_days ?? 180;
  if (now.getTime() - target.transaction_ts.getTime() > lookback * DAY_MS) {
    throw new EventRejected(
      'REVERSAL_OUTSIDE_WINDOW',
      'reversal_of',
      `Purchase ${target.event_id} is older than the ${lookback}-day reversal lookback`,
    );
  }
  const earn = target.earn as unknown as StoredEarn;
  const programs = earn.programs ?? (target.entry_earn as StoredPurchase['programs'] | null);
  // Every purchase keeps them in one of the two places; finding neither means a broken row.
  if (!programs) throw new Error(`events.earn of ${target.event_id}: no explanations in it or its entry`);
  return {
    event_id: target.event_id,
    member_id: target.member_id,
    brand_id: target.brand_id,
    transaction_ts: target.transaction_ts,
    earn,
    programs: inStoredKeyOrder(programs),
  };
}

function purchaseRow(trx: Trx, event_id: string) {
  return trx
    .selectFrom('events as e')
    .leftJoin('entries as en', (join) => join.on(sql<boolean>`en.id = (e.earn->>'entry_id')::int8`))
    .select([
      'e.event_id',
      'e.member_id',
      'e.brand_id',
      'e.event_type',
      'e.transaction_ts',
      'e.earn',
      sql<unknown>`en.detail->'earn'`.as('entry_earn'),
    ])
    .where('e.event_id', '=', event_id)
    .executeTakeFirst();
}

/** The event an event id was answered as a duplicate of (by the index of migration 014). */
async function duplicateOf(trx: Trx, event_id: string): Promise<string | null> {
  const row = (
    await sql<{ duplicate_of: string | null }>`
      select response -> 'body' ->> 'duplicate_of' as duplicate_of from idempotency_keys
      where scope = 'event' and status_code = 200 and response ->> 'event_id' = ${event_id}
      limit 1`.execute(trx)
  ).rows[0];
  return row?.duplicate_of ?? null;
}

/**
 * The explanations ordered by program id as jsonb orders keys (shorter first, then bytewise;
 * program ids are ASCII): the order a reversal's `reversed` list has always had, from when the
 * explanations were stored as jsonb. The json they are stored in now keeps the order they were
 * written in, so without this a reversal's answer would depend on when its purchase was stored.
 */
function inStoredKeyOrder<T>(byProgram: Record<string, T>): Record<string, T> {
  const ids = Object.keys(byProgram).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(ids.map((id) => [id, byProgram[id]!]));
}

export async function reversePurchase(
  trx: Trx,
  group: Group,
  ev: CanonicalEvent,
  purchase: StoredPurchase,
  now: Date,
  actor: Actor,
): Promise<{ entry_id: bigint | null; reversed: ReversedView[]; after: ReversalState }> {
  const state: ReversalState = purchase.earn.reversal ?? { returned: {}, spend_removed: {}, voided: false };
  if (state.voided)
    throw new EventRejected('OVER_REFUND', 'reversal_of', `Purchase ${purchase.event_id} was already voided`);
  const takeBack = new Map<string, Pt4>();
  let returnedAfter = state.returned;
  const spendShare = new Map<string, Ratio>();
  for (const [program_id, stored] of Object.entries(purchase.programs)) {
    const explanation = forRefund(stored);
    if (ev.event_type === 'purchase_voided') {
      takeBack.set(program_id, calculateVoid(explanation, state.returned).points_pt4);
      spendShare.set(program_id, remainingSpend(explanation, state, program_id));
    } else {
      const r = calculateRefund(
        explanation,
        state.returned,
        ev.line_items.map((l) => ({
          sku: l.sku,
          quantity: l.quantity,
          unit_price_cents: l.unit_price_cents,
        })),
      );
      if (isRefundError(r))
        throw new EventRejected(
          r.error === 'OVER_REFUND' ? 'OVER_REFUND' : 'INVALID_EVENT',
          r.field,
          r.message,
        );
      takeBack.set(program_id, r.points_pt4);
      returnedAfter = r.returned_after;
      spendShare.set(program_id, returnedSpend(explanation, state.returned, r.returned_after));
    }
  }
  // Judged by quantities, not points: a purchase that earned nothing (ineligible lines only) can
  // still be voided after a partial refund; only one whose every line is back cannot.
  if (ev.event_type === 'purchase_voided' && Object.keys(state.returned).length > 0) {
    const fullyRefunded = Object.values(purchase.programs).every((e) => allReturned(e, state.returned));
    if (fullyRefunded)
      throw new EventRejected(
        'OVER_REFUND',
        'reversal_of',
        `Purchase ${purchase.event_id} was already refunded in full`,
      );
  }

  const lots = await openLots(trx, ev.member_id, [...takeBack.keys()]);
  const absorbed = await writtenOffSoFar(trx, ev.member_id, 'event', purchase.event_id);
  const postings: PostingInput[] = [];
  const moves: LotMove[] = [];
  const floors: FloorMove[] = [];
  const reversed: ReversedView[] = [];
  const reviews: ReviewItem[] = [];
  for (const [program_id, points] of takeBack) {
    const plan = planReversal({
      lots: lots.filter((l) => l.program_id === program_id),
      own: (l) => l.source_event_id === purchase.event_id,
      member_id: ev.member_id,
      program_id,
      issuing_brand_id: purchase.brand_id,
      points_pt4: points,
      absorb_pt4: absorbLeft(group.programs.get(program_id)?.absorb_up_to_pt4, absorbed.get(program_id)),
      now,
    });
    postings.push(...plan.postings);
    moves.push(...plan.moves);
    floors.push(...plan.floors);
    if (plan.review) reviews.push(plan.review);
    reversed.push(plan.view);
  }

  let entry_id: bigint | null = null;
  if (postings.length > 0) {
    const posted = await postEntry(trx, {
      kind: 'reversal',
      member_id: ev.member_id,
      at: now,
      event_id: ev.event_id,
      request_id: actor.request_id,
      key_id: actor.key_id,
      corrects_entry_id: purchase.earn.entry_id ? BigInt(purchase.earn.entry_id) : null,
      ref_type: 'event',
      ref_id: purchase.event_id,
      detail: { event_id: ev.event_id, reversal_of: purchase.event_id, reversed },
      postings,
      lot_moves: moves,
      floor_moves: floors,
    });
    entry_id = posted.entry_id;
  }
  await openReviews(trx, reviews, {
    member_id: ev.member_id,
    entry_id,
    event_id: ev.event_id,
    now,
    detail: { reversal_of: purchase.event_id, reason: 'reversal shortfall above the program absorb limit' },
  });

  const newSpendRemoved: Record<string, string> = { ...state.spend_removed };
  const activity = [...takeBack.keys()].map((program_id) => {
    const spend = roundRatio(spendShare.get(program_id) ?? ZERO, 'floor');
    newSpendRemoved[program_id] = String(BigInt(state.spend_removed[program_id] ?? '0') + spend);
    return { program_id, spend_minor: -spend, points_pt4: -(takeBack.get(program_id) ?? 0n) };
  });
  await recordActivity(trx, ev.member_id, activity, new Date(ev.transaction_ms), ev.event_id, entry_id);
  const next: ReversalState = {
    returned: returnedAfter,
    spend_removed: newSpendRemoved,
    voided: ev.event_type === 'purchase_voided',
  };
  await trx
    .updateTable('events')
    .set({ earn: JSON.stringify({ ...purchase.earn, reversal: next }) as never })
    .where('event_id', '=', purchase.event_id)
    .execute();
  await reviewTiersAfterReversal(trx, group, ev.member_id, [...takeBack.keys()], now);
  return { entry_id, reversed, after: next };
}

/**
 * A tier the reversed purchase lifted the member to goes with it at once, rather than at the
 * next tiers job (services/tiers.ts reviewTier): later purchases earn at the tier really held.
 */
async function reviewTiersAfterReversal(
  trx: Trx,
  group: Group,
  member_id: string,
  program_ids: readonly string[],
  now: Date,
): Promise<void> {
  const tiered = program_ids.filter((id) => group.programs.get(id)?.tiers.some((t) => t.qualify));
  if (tiered.length === 0) return;
  const held = await trx
    .selectFrom('enrollments')
    .select(['program_id', 'tier', 'tier_since'])
    .where('member_id', '=', member_id)
    .where('program_id', 'in', tiered)
    .execute();
  for (const e of held) await reviewTier(trx, member_id, group.programs.get(e.program_id)!, e, now, now);
}

interface Take {
  lot: OpenLot;
  points_pt4: Pt4;
}

/** A reversal shortfall above the program's absorb limit: a negative balance to review. */
export interface ReviewItem {
  program_id: string;
  points_pt4: Pt4;
}

export interface ReversalPlan {
  postings: PostingInput[];
  moves: LotMove[];
  floors: FloorMove[];
  view: ReversedView;
  review: ReviewItem | null;
}

/**
 * Taking `points_pt4` back from one member in one program, as every reversal of an accrual does
 * (a purchase's points, a referral bonus): from the accrual's own lots first, then the member's
 * other spendable lots; a shortfall within the program's absorb limit is written off to the
 * issuing brand, a larger one is a recorded negative balance (the caller opens its review).
 */
export function planReversal(p: {
  lots: readonly OpenLot[];
  own: (lot: OpenLot) => boolean;
  member_id: string;
  program_id: string;
  issuing_brand_id: string;
  points_pt4: Pt4;
  absorb_pt4: Pt4;
  now: Date;
}): ReversalPlan {
  const { program_id, member_id, points_pt4: points } = p;
  const plan = planTakeBack(p.lots, p.own, points, p.now);
  const postings: PostingInput[] = [];
  const moves: LotMove[] = [];
  const floors: FloorMove[] = [];
  let review: ReviewItem | null = null;
  const view: ReversedView = {
    program_id,
    points: pt4ToJson(points),
    from_pending: 0,
    from_available: 0,
    written_off: 0,
    negative_balance: 0,
  };
  if (points > 0n)
    postings.push({ account: systemAccount(program_id, 'issuance', p.issuing_brand_id), amount_pt4: points });
  let pending = 0n;
  let available = 0n;
  for (const t of plan.takes) {
    moves.push({
      lot_id: t.lot.id,
      program_id,
      member_id,
      issuing_brand_id: t.lot.issuing_brand_id,
      kind: 'reverse',
      points_pt4: t.points_pt4,
      remaining_delta_pt4: -t.points_pt4,
      held_delta_pt4: 0n,
      state_from: t.lot.state,
    });
    if (t.lot.state === 'pending') pending += t.points_pt4;
    else available += t.points_pt4;
  }
  if (pending > 0n)
    postings.push({ account: memberAccount(program_id, member_id, 'member_pending'), amount_pt4: -pending });
  if (available > 0n)
    postings.push({
      account: memberAccount(program_id, member_id, 'member_available'),
      amount_pt4: -available,
    });
  const shortfall = plan.shortfall_pt4;
  if (shortfall > 0n && shortfall <= p.absorb_pt4) {
    postings.push({
      account: systemAccount(program_id, 'writeoff', p.issuing_brand_id),
      amount_pt4: -shortfall,
    });
    view.written_off = pt4ToJson(shortfall);
  } else if (shortfall > 0n) {
    const acc = memberAccount(program_id, member_id, 'member_available');
    postings.push({ account: acc, amount_pt4: -shortfall });
    floors.push({ account: acc, delta_pt4: -shortfall });
    review = { program_id, points_pt4: shortfall };
    view.negative_balance = pt4ToJson(shortfall);
  }
  view.from_pending = pt4ToJson(pending);
  view.from_available = pt4ToJson(available);
  return { postings, moves, floors, view, review };
}

/**
 * What the brand may still write off of a shortfall: the program's absorb limit counts per
 * accrual over all its reversals (a purchase's refunds and void; a referral bonus's clawbacks),
 * so splitting a refund into lines, or a bonus into cycles, cannot go round it.
 */
export const absorbLeft = (limit_pt4: Pt4 | undefined, written_off_pt4: Pt4 | undefined): Pt4 => {
  const left = (limit_pt4 ?? 0n) - (written_off_pt4 ?? 0n);
  return left > 0n ? left : 0n;
};

/**
 * Per program: what the member's earlier reversals of one accrual (entries of kind reversal
 * naming it: `ref_type` 'event' and the purchase's event id, or 'referral' and the referred
 * member) wrote off, read under the member's lock. Recoveries since do not give it back.
 */
export async function writtenOffSoFar(
  trx: Trx,
  member_id: string,
  ref_type: 'event' | 'referral',
  ref_id: string,
): Promise<Map<string, Pt4>> {
  const { rows } = await sql<{ program_id: string; written_off_pt4: bigint }>`
    select a.program_id, (-sum(p.amount_pt4))::int8 as written_off_pt4
    from entries e
    join postings p on p.entry_id = e.id
    join accounts a on a.id = p.account_id and a.kind = 'writeoff'
    where e.ref_type = ${ref_type} and e.ref_id = ${ref_id} and e.kind = 'reversal'
      and e.member_id = ${member_id}
    group by a.program_id`.execute(trx);
  return new Map(rows.map((r) => [r.program_id, BigInt(r.written_off_pt4)]));
}

/** Opens a review item for each recorded negative balance a reversal entry left. */
export async function openReviews(
  trx: Trx,
  reviews: readonly ReviewItem[],
  o: { member_id: string; entry_id: bigint | null; event_id: string; now: Date; detail: object },
): Promise<void> {
  for (const r of reviews) {
    await trx
      .insertInto('reviews')
      .values({
        at: o.now,
        kind: 'negative_balance',
        member_id: o.member_id,
        program_id: r.program_id,
        points_pt4: r.points_pt4,
        entry_id: o.entry_id,
        event_id: o.event_id,
        detail: JSON.stringify(o.detail) as never,
      })
      .execute();
  }
}

/** The accrual's own lots first (pending ones cancelled before anything else), then the
 * member's other spendable lots earliest-expiry first; what is left is the shortfall. */
function planTakeBack(
  lots: readonly OpenLot[],
  isOwn: (lot: OpenLot) => boolean,
  points: Pt4,
  now: Date,
): { takes: Take[]; shortfall_pt4: Pt4 } {
  const takes: Take[] = [];
  let left = points;
  const own = lots.filter(isOwn).sort((a, b) => (a.state === b.state ? 0 : a.state === 'pending' ? -1 : 1));
  for (const l of own) {
    if (left === 0n) break;
    const free = l.remaining_pt4 - l.held_pt4;
    const take = free < left ? free : left;
    if (take > 0n) takes.push({ lot: l, points_pt4: take });
    left -= take;
  }
  if (left > 0n) {
    const others = lots.filter((l) => !isOwn(l));
    const byId = new Map(others.map((l) => [String(l.id), l]));
    const fefo = allocateFefo(spendable(others, now), left);
    for (const a of fefo.allocations) takes.push({ lot: byId.get(a.lot_id)!, points_pt4: a.points_pt4 });
    left = fefo.shortfall_pt4;
  }
  return { takes, shortfall_pt4: left };
}

/**
 * What is left of the purchase's eligible spend in a program after the reversals so far
 * (program minor units), and whether every line is back: a referral bonus it paid stands only
 * while what is left still meets the referral's minimum (referral-clawback.ts).
 */
export function spendLeft(
  purchase: StoredPurchase,
  state: ReversalState,
  program_id: string,
): { spend_minor: bigint; all_returned: boolean } | null {
  const e = purchase.programs[program_id];
  if (!e) return null;
  const left = remainingSpend(e, state, program_id);
  return {
    spend_minor: roundRatio(left, 'floor'),
    all_returned: state.voided || allReturned(e, state.returned),
  };
}

/** A line quantity as the explanation stores it: an exact decimal ("0.75"), or a ratio ("3/4"). */
const lineQuantity = (q: string): Ratio => (q.includes('.') ? parseDecimal(q) : ratioFromJson(q));

/**
 * The explanation stores line quantities as exact decimals ("0.75"), but the refund calculation
 * (domain/earn/refund.ts) reads them with ratioFromJson ("3/4" only): without this, refunding or
 * voiding a purchase with a weighed line (0.75 kg) throws and answers 500. Hands it ratios.
 */
function forRefund(e: EarnExplanation): EarnExplanation {
  if (!e.lines.some((l) => l.quantity.includes('.'))) return e;
  return {
    ...e,
    lines: e.lines.map((l) =>
      l.quantity.includes('.') ? { ...l, quantity: ratioToJson(parseDecimal(l.quantity)) } : l,
    ),
  };
}

/** Every line of the purchase is back (cumulative refunded quantity ≥ bought). */
function allReturned(e: EarnExplanation, returned: Record<number, number>): boolean {
  return e.lines.every(
    (l) =>
      l.line_index === null || cmp(quantityRatio(returned[l.line_index] ?? 0), lineQuantity(l.quantity)) >= 0,
  );
}

/** Eligible spend of the lines returned by this refund (program minor units, exact). */
function returnedSpend(
  e: EarnExplanation,
  before: Record<number, number>,
  after: Record<number, number>,
): Ratio {
  const eligible = ratioFromJson(e.eligible_amount_minor);
  const lines = e.lines.filter((l) => l.eligible && l.line_index !== null);
  const total = lines.reduce((acc, l) => add(acc, ratioFromJson(l.weight_minor)), ZERO);
  if (total.num === 0n) return ZERO;
  let share = ZERO;
  for (const l of lines) {
    const idx = l.line_index!;
    const delta = (after[idx] ?? 0) - (before[idx] ?? 0);
    if (delta <= 0) continue;
    const fraction = div(quantityRatio(delta), lineQuantity(l.quantity));
    share = add(share, mul(ratioFromJson(l.weight_minor), fraction));
  }
  return mul(eligible, div(share, total));
}

function remainingSpend(e: EarnExplanation, state: ReversalState, program_id: string): Ratio {
  const eligible = roundRatio(ratioFromJson(e.eligible_amount_minor), 'floor');
  const removed = BigInt(state.spend_removed[program_id] ?? '0');
  return ratio(eligible > removed ? eligible - removed : 0n);
}
