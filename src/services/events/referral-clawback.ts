import { sql } from 'kysely';
import type { Group } from '../../domain/config/group.ts';
import type { CanonicalEvent } from '../../domain/events/canonical.ts';
import { postEntry, type Trx } from '../../ledger/post.ts';
import { openLots } from '../../ledger/read.ts';
import type { Actor } from '../context.ts';
import { lockMembers } from '../members.ts';
import {
  absorbLeft,
  openReviews,
  planReversal,
  spendLeft,
  type ReversalState,
  type ReversedView,
  type StoredPurchase,
  writtenOffSoFar,
} from './reverse.ts';

// Refer yourself, buy, collect the referral bonus, refund: the bonus is paid by one purchase
// (referral.ts), so it stands only while that purchase still qualifies. When a void or refund of
// the purchase leaves less eligible spend than the referral's minimum (a void, or every line
// back, always does), the referrer's bonus is taken back in the same transaction, the way any
// accrual is reversed (reverse.ts planReversal): from the bonus lot first, then the referrer's
// other spendable points, and a shortfall is written off up to the program's absorb limit or
// becomes a reviewed negative balance. The referral is then unpaid again, so the referred
// member's next qualifying purchase pays it: the referrer ends with one bonus per purchase that
// still qualifies, never two, and never one that a refund undid.

export interface ReferralBonusReversedView extends ReversedView {
  referrer_member_id: string;
  /** The purchase whose bonus it was. */
  purchase_event_id: string;
}

/** The referrer of a member (paid or not): a reversal locks them with the member. */
export const referralOfQuery = (db: Pick<Trx, 'selectFrom'>, member_id: string) =>
  db
    .selectFrom('referrals')
    .select(['referrer_member_id', 'rewarded_entry_id'])
    .where('referred_member_id', '=', member_id);

/** The bonus the purchase paid, if it is still the paid one (read under the member's lock). */
async function paidBonus(trx: Trx, purchase: StoredPurchase) {
  return trx
    .selectFrom('referrals as r')
    .innerJoin('entries as e', 'e.id', 'r.rewarded_entry_id')
    .innerJoin('lots as l', 'l.source_entry_id', 'e.id')
    .select([
      'r.referrer_member_id',
      'e.id as entry_id',
      'l.id as lot_id',
      'l.program_id',
      'l.issuing_brand_id',
      'l.points_pt4',
      sql<string | null>`e.detail->>'min_spend_minor'`.as('min_spend_minor'),
    ])
    .where('r.referred_member_id', '=', purchase.member_id)
    .where('e.kind', '=', 'referral_bonus')
    .where('e.event_id', '=', purchase.event_id)
    .executeTakeFirst();
}

/**
 * After `reversePurchase` (same transaction, the member locked, `locked` the members the caller
 * locked): takes the referral bonus back when the purchase no longer qualifies for it.
 */
export async function clawBackReferralBonus(
  trx: Trx,
  group: Group,
  ev: CanonicalEvent,
  purchase: StoredPurchase,
  after: ReversalState,
  locked: ReadonlySet<string>,
  now: Date,
  actor: Actor,
): Promise<ReferralBonusReversedView | null> {
  const bonus = await paidBonus(trx, purchase);
  if (!bonus) return null;
  const program = group.programs.get(bonus.program_id);
  // The minimum the bonus was paid against (kept with it since bonuses record it); the
  // program's current one for bonuses paid before that.
  const min_spend =
    bonus.min_spend_minor !== null
      ? BigInt(bonus.min_spend_minor)
      : (program?.referral?.min_spend_minor ?? 0n);
  const left = spendLeft(purchase, after, bonus.program_id);
  if (left && !left.all_returned && left.spend_minor >= min_spend) return null;

  const referrer = bonus.referrer_member_id;
  // Locked with the member when the reversal started (intake.ts); a bonus paid by a purchase
  // that committed after that first read is the one case left, locked here.
  if (!locked.has(referrer)) await lockMembers(trx, [referrer]);
  const lots = await openLots(trx, referrer, [bonus.program_id]);
  const absorbed = await writtenOffSoFar(trx, referrer, 'referral', purchase.member_id);
  const plan = planReversal({
    lots,
    own: (l) => l.id === bonus.lot_id,
    member_id: referrer,
    program_id: bonus.program_id,
    issuing_brand_id: bonus.issuing_brand_id,
    points_pt4: bonus.points_pt4,
    absorb_pt4: absorbLeft(program?.absorb_up_to_pt4, absorbed.get(bonus.program_id)),
    now,
  });
  const posted = await postEntry(trx, {
    kind: 'reversal',
    member_id: referrer,
    at: now,
    event_id: ev.event_id,
    request_id: actor.request_id,
    key_id: actor.key_id,
    corrects_entry_id: bonus.entry_id,
    ref_type: 'referral',
    ref_id: purchase.member_id,
    detail: {
      event_id: ev.event_id,
      reversal_of: purchase.event_id,
      referral_bonus_of: purchase.member_id,
      reversed: [plan.view],
    },
    postings: plan.postings,
    lot_moves: plan.moves,
    floor_moves: plan.floors,
  });
  await openReviews(trx, plan.review ? [plan.review] : [], {
    member_id: referrer,
    entry_id: posted.entry_id,
    event_id: ev.event_id,
    now,
    detail: {
      reversal_of: purchase.event_id,
      referred_member_id: purchase.member_id,
      reason: 'referral bonus taken back: shortfall above the program absorb limit',
    },
  });
  // Unpaid again: the referred member's next qualifying purchase pays the bonus. Conditional, so
  // the row is known to still name this bonus (the member lock serialises its writers).
  const res = await trx
    .updateTable('referrals')
    .set({ rewarded_entry_id: null })
    .where('referred_member_id', '=', purchase.member_id)
    .where('rewarded_entry_id', '=', bonus.entry_id)
    .executeTakeFirst();
  if (res.numUpdatedRows !== 1n) throw new Error('referral bonus clawback raced: rolled back');
  return {
    ...plan.view,
    referrer_member_id: referrer,
    purchase_event_id: purchase.event_id,
  };
}
