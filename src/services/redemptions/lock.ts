import { AppError } from '../../errors.ts';
import type { Trx } from '../../ledger/post.ts';
import { lockMembers } from '../members.ts';

/**
 * A redemption read under its member's lock, the order every command takes: find it, lock the
 * member, then read it again, so a concurrent capture/release/reverse that committed in between
 * is seen.
 */
export async function lockRedemption(trx: Trx, redemption_id: string) {
  const found = await trx
    .selectFrom('redemptions')
    .select('member_id')
    .where('id', '=', redemption_id)
    .executeTakeFirst();
  if (!found) throw new AppError('REDEMPTION_NOT_FOUND', undefined, { redemption_id });
  await lockMembers(trx, [found.member_id]);
  return trx.selectFrom('redemptions').selectAll().where('id', '=', redemption_id).executeTakeFirstOrThrow();
}
