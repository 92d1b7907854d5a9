import { pt4ToJson, type Pt4 } from '../../domain/points.ts';
import { AppError } from '../../errors.ts';
import { systemAccount } from '../../ledger/accounts.ts';
import type { LotMove, PostingInput } from '../../ledger/entry.ts';
import { postEntry } from '../../ledger/post.ts';
import type { Actor, Ctx } from '../context.ts';
import { inTransaction, PREPARED } from '../transaction.ts';
import { lockRedemption } from './lock.ts';
import { remainingBalances } from './spendable.ts';
import { reclaimedView, reclaimReturned, resolveRepaidDebts } from './reclaim.ts';
import { creditReturned, returnMoveBase, type ReturnedAllocation } from './returned-points.ts';
import { returnRewardStock } from './rewards.ts';
import { reverseSettlement } from './settlement.ts';

// POST /v1/redemptions/{id}/reverse (the order was cancelled after capture): every point goes
// back to the lot it came from, with that lot's original expiry. A lot whose expiry has passed
// meanwhile is restored and expired in the same entry, to breakage of its issuing brand. The
// settlement trail is reversed by the exact negation of its flows.

export async function reverseRedemption(
  ctx: Ctx,
  redemption_id: string,
  actor: Actor,
): Promise<Record<string, unknown>> {
  return inTransaction(
    ctx.db,
    async (trx) => {
      const now = ctx.clock.now();
      const r = await lockRedemption(trx, redemption_id);
      const spent = await trx
        .selectFrom('lot_allocations as a')
        .innerJoin('entries as e', 'e.id', 'a.entry_id')
        .innerJoin('lots as l', 'l.id', 'a.lot_id')
        .select(['a.lot_id', 'a.program_id', 'a.issuing_brand_id', 'a.points_pt4', 'l.expires_at'])
        .where('e.ref_type', '=', 'redemption')
        .where('e.ref_id', '=', redemption_id)
        .where('a.kind', 'in', ['spend', 'capture'])
        .orderBy('a.id')
        .execute();
      const updated = await trx
        .updateTable('redemptions')
        .set({ status: 'reversed', resolved_at: now })
        .where('id', '=', redemption_id)
        .where('status', '=', 'captured')
        .executeTakeFirst();
      if (updated.numUpdatedRows !== 1n) {
        throw new AppError(
          'REDEMPTION_NOT_REVERSIBLE',
          `Redemption ${redemption_id} is ${r.status}; only a captured redemption can be reversed`,
          { redemption_id, status: r.status },
        );
      }
      const postings: PostingInput[] = [];
      const moves: LotMove[] = [];
      const expiredNow = new Map<string, Pt4>();
      const credited: ReturnedAllocation[] = [];
      for (const a of spent) {
        postings.push({
          account: systemAccount(a.program_id, 'redemption', r.brand_id),
          amount_pt4: -a.points_pt4,
        });
        moves.push({ ...returnMoveBase(a, r.member_id), kind: 'restore', remaining_delta_pt4: a.points_pt4 });
        if (creditReturned(a, r.member_id, now, postings, moves))
          expiredNow.set(a.program_id, (expiredNow.get(a.program_id) ?? 0n) + a.points_pt4);
        else credited.push(a);
      }
      const reclaimed = await reclaimReturned(trx, r.member_id, credited);
      postings.push(...reclaimed.postings);
      moves.push(...reclaimed.moves);
      const posted = await postEntry(trx, {
        kind: 'redemption_reversal',
        member_id: r.member_id,
        at: now,
        request_id: actor.request_id,
        key_id: actor.key_id,
        corrects_entry_id: r.entry_id,
        ref_type: 'redemption',
        ref_id: redemption_id,
        detail: {
          redemption_id,
          expired_on_restore: Object.fromEntries([...expiredNow].map(([k, v]) => [k, v.toString()])),
        },
        postings,
        lot_moves: moves,
        floor_moves: reclaimed.floors,
      });
      await resolveRepaidDebts(trx, r.member_id, reclaimed, now);
      await reverseSettlement(trx, redemption_id, posted.entry_id, now);
      await returnRewardStock(trx, r.reward_id, r.quantity, now);
      const restored = new Map<string, Pt4>();
      for (const a of spent) restored.set(a.program_id, (restored.get(a.program_id) ?? 0n) + a.points_pt4);
      return {
        redemption_id,
        status: 'reversed',
        restored: [...restored]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([program_id, p]) => ({
            program_id,
            points: pt4ToJson(p),
            expired_on_restore: pt4ToJson(expiredNow.get(program_id) ?? 0n),
            ...reclaimedView(reclaimed.byProgram.get(program_id)),
          })),
        balances: await remainingBalances(trx, r.member_id),
      };
    },
    PREPARED,
  );
}
