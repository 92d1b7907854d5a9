import type { Group } from '../../domain/config/group.ts';
import type { StoreConfig } from '../../domain/config/schema.ts';
import type { CanonicalEvent } from '../../domain/events/canonical.ts';
import { pt4ToJson } from '../../domain/points.ts';
import { memberAccount, systemAccount } from '../../ledger/accounts.ts';
import { payDebtFromNewLots } from '../../ledger/debt-paydown.ts';
import { postEntry, type Trx } from '../../ledger/post.ts';
import { memberState } from '../../ledger/read.ts';
import type { Actor } from '../context.ts';
import { enroll, ensureMember } from '../members.ts';
import { lotExpiry } from './accrual-entry.ts';
import { resolvePaidDebts } from './accrue.ts';
import { inactivityDeadlineQuery } from './inactivity.ts';
import { EventRejected } from './rejected.ts';

// member_referred links the referred member (member_id) to the referrer. The referrer earns the
// program's referral bonus once: on the referred member's first purchase at a brand whose program
// (or else the default program) has a referral bonus and whose eligible spend meets its minimum.
// A void or refund that leaves that purchase below the minimum takes the bonus back and makes it
// unpaid again, so a later qualifying purchase pays it (referral-clawback.ts).

export async function linkReferral(
  trx: Trx,
  ev: CanonicalEvent,
  now: Date,
): Promise<{ linked: boolean; referrer_member_id: string }> {
  const referrer = ev.referrer_member_id!;
  await ensureMember(trx, referrer, now);
  const existing = await trx
    .selectFrom('referrals')
    .selectAll()
    .where('referred_member_id', '=', ev.member_id)
    .executeTakeFirst();
  if (existing && existing.referrer_member_id !== referrer) {
    throw new EventRejected(
      'INVALID_EVENT',
      'member_id',
      `Member ${ev.member_id} was already referred by another member`,
    );
  }
  const prior = await trx
    .selectFrom('events')
    .select('event_id')
    .where('member_id', '=', ev.member_id)
    .where('event_type', '=', 'purchase_completed')
    .limit(1)
    .executeTakeFirst();
  if (!existing && prior)
    throw new EventRejected(
      'INVALID_EVENT',
      'member_id',
      `Member ${ev.member_id} has already purchased; a referral must come first`,
    );
  if (!existing) {
    await trx
      .insertInto('referrals')
      .values({
        referred_member_id: ev.member_id,
        referrer_member_id: referrer,
        event_id: ev.event_id,
        at: now,
        rewarded_entry_id: null,
      })
      .execute();
    await trx.updateTable('members').set({ referred_by: referrer }).where('id', '=', ev.member_id).execute();
  }
  return { linked: !existing, referrer_member_id: referrer };
}

/** Who referred the member, while the bonus is unpaid (send with other reads: write-behind.ts). */
export const referrerQuery = (db: Pick<Trx, 'selectFrom'>, member_id: string) =>
  db
    .selectFrom('referrals')
    .select('referrer_member_id')
    .where('referred_member_id', '=', member_id)
    .where('rewarded_entry_id', 'is', null);

export interface ReferralBonusView {
  referrer_member_id: string;
  program_id: string;
  points: number;
  /** Of the bonus, what paid the referrer's recorded debt in the program. */
  debt_paid: number;
}

export async function maybeReferralBonus(
  trx: Trx,
  group: Group,
  ev: CanonicalEvent,
  store: StoreConfig,
  spend_minor: ReadonlyMap<string, bigint>,
  now: Date,
  actor: Actor,
  link: { referrer_member_id: string },
): Promise<ReferralBonusView | null> {
  const brandProgram = group.programs.get(group.brands.get(store.brand)?.program ?? '');
  const program = brandProgram?.referral ? brandProgram : group.programs.get(group.default_program_id);
  if (!program?.referral || program.referral.bonus_pt4 <= 0n) return null;
  if ((spend_minor.get(program.id) ?? 0n) < program.referral.min_spend_minor) return null;
  const at = new Date(ev.transaction_ms);
  // Under inactivity the bonus lot joins the referrer's other lots at their deadline when that
  // is later (accrual-entry.ts lotExpiry), as any new lot does.
  const deadline =
    program.expiry.kind === 'inactivity'
      ? (await inactivityDeadlineQuery(trx, link.referrer_member_id, [program.id], now).executeTakeFirst())
          ?.deadline
      : undefined;
  const expires = lotExpiry(program, at.getTime(), undefined, deadline ? new Date(deadline).getTime() : null);
  await enroll(trx, link.referrer_member_id, [program.id], now);
  const points = program.referral.bonus_pt4;
  // The bonus pays the referrer's recorded debt in the program first (debt-paydown.ts); the
  // caller holds the referrer's lock.
  const debt = -((await memberState(trx, link.referrer_member_id)).get(program.id)?.floor_pt4 ?? 0n);
  const { lots, floors, paid_pt4 } = payDebtFromNewLots(
    [
      {
        program_id: program.id,
        member_id: link.referrer_member_id,
        issuing_brand_id: store.brand,
        points_pt4: points,
        remaining_pt4: points,
        state: 'available',
        awarded_at: at,
        available_at: at,
        expires_at: expires === null ? null : new Date(expires),
        source_event_id: `referral:${ev.member_id}`,
      },
    ],
    link.referrer_member_id,
    program.id,
    debt,
  );
  const posted = await postEntry(trx, {
    kind: 'referral_bonus',
    member_id: link.referrer_member_id,
    at: now,
    event_id: ev.event_id,
    request_id: actor.request_id,
    key_id: actor.key_id,
    ref_type: 'referral',
    ref_id: ev.member_id,
    // The minimum it was paid against: a reversal of the purchase judges by it (referral-clawback.ts).
    detail: {
      referred_member_id: ev.member_id,
      purchase_event_id: ev.event_id,
      min_spend_minor: program.referral.min_spend_minor.toString(),
    },
    postings: [
      { account: memberAccount(program.id, link.referrer_member_id, 'member_available'), amount_pt4: points },
      { account: systemAccount(program.id, 'issuance', store.brand), amount_pt4: -points },
    ],
    new_lots: lots,
    floor_moves: floors,
  });
  await resolvePaidDebts(trx, link.referrer_member_id, floors, now, 'paid down by a referral bonus');
  // Conditional: a concurrent purchase of the same referred member cannot pay the bonus twice.
  const res = await trx
    .updateTable('referrals')
    .set({ rewarded_entry_id: posted.entry_id })
    .where('referred_member_id', '=', ev.member_id)
    .where('rewarded_entry_id', 'is', null)
    .executeTakeFirst();
  if (res.numUpdatedRows !== 1n) throw new Error('referral bonus raced: rolled back');
  return {
    referrer_member_id: link.referrer_member_id,
    program_id: program.id,
    points: pt4ToJson(points),
    debt_paid: pt4ToJson(paid_pt4),
  };
}
