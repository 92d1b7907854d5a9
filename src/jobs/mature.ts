import { sql } from 'kysely';
import { pt4ToJson } from '../domain/points.ts';
import { memberAccount } from '../ledger/accounts.ts';
import type { FloorMove, LotMove, PostingInput } from '../ledger/entry.ts';
import { postEntries } from '../ledger/post.ts';
import type { EntryInput } from '../ledger/entry.ts';
import { memberState } from '../ledger/read.ts';
import type { Ctx } from '../services/context.ts';
import { resolvePaidDebts } from '../services/events/accrue.ts';
import { byMemberId, forEachMemberBatch, groupBy, stampAt, type JobProgress } from './batch.ts';

// mature: pending lots whose available_at <= as_of become spendable (pending → available). A
// member who owes a recorded reversal shortfall pays it down first from the matured points.

export async function runMature(ctx: Ctx, as_of: Date, onProgress?: (p: JobProgress) => void) {
  let lots = 0;
  let points = 0n;
  const { skipped_members } = await forEachMemberBatch(
    ctx,
    async (after, limit) => {
      const rows = await sql<{ member_id: string }>`select distinct member_id from lots
        where state = 'pending' and open and available_at <= ${as_of}
          ${after === null ? sql`` : sql`and member_id > ${after}`}
        order by member_id limit ${limit}`.execute(ctx.db);
      return byMemberId(
        rows.rows.map((r) => r.member_id),
        limit,
      );
    },
    async (trx, member_ids) => {
      const due = await trx
        .selectFrom('lots')
        .select(['id', 'member_id', 'program_id', 'issuing_brand_id', 'remaining_pt4'])
        .where('member_id', 'in', member_ids)
        .where('state', '=', 'pending')
        .where('open', '=', true)
        .where('available_at', '<=', as_of)
        .orderBy('member_id')
        .orderBy('id')
        .execute();
      const entries: EntryInput[] = [];
      const paid: [string, FloorMove[]][] = [];
      for (const [member_id, memberLots] of groupBy(due, (l) => l.member_id)) {
        const state = await memberState(trx, member_id);
        const debt = new Map([...state].map(([p, s]) => [p, -s.floor_pt4]));
        const postings: PostingInput[] = [];
        const moves: LotMove[] = [];
        const floors: FloorMove[] = [];
        for (const l of memberLots) {
          const x = l.remaining_pt4;
          const base = {
            lot_id: l.id,
            program_id: l.program_id,
            member_id,
            issuing_brand_id: l.issuing_brand_id,
            held_delta_pt4: 0n,
          };
          postings.push({
            account: memberAccount(l.program_id, member_id, 'member_pending'),
            amount_pt4: -x,
          });
          postings.push({
            account: memberAccount(l.program_id, member_id, 'member_available'),
            amount_pt4: x,
          });
          moves.push({
            ...base,
            kind: 'mature',
            points_pt4: x,
            remaining_delta_pt4: 0n,
            state_from: 'pending',
            state_to: 'available',
          });
          const owed = debt.get(l.program_id) ?? 0n;
          const pay = owed > 0n ? (x < owed ? x : owed) : 0n;
          if (pay > 0n) {
            moves.push({
              ...base,
              kind: 'debt_paydown',
              points_pt4: pay,
              remaining_delta_pt4: -pay,
              state_from: 'available',
            });
            floors.push({
              account: memberAccount(l.program_id, member_id, 'member_available'),
              delta_pt4: pay,
            });
            debt.set(l.program_id, owed - pay);
          }
          lots++;
          points += x;
        }
        entries.push({
          kind: 'maturation',
          member_id,
          at: stampAt(ctx, as_of),
          ref_type: 'job',
          ref_id: 'mature',
          detail: { as_of: as_of.toISOString() },
          postings,
          lot_moves: moves,
          floor_moves: mergeFloors(floors),
        });
        if (floors.length > 0) paid.push([member_id, floors]);
      }
      await postEntries(trx, entries);
      for (const [member_id, floors] of paid) await resolvePaidDebts(trx, member_id, floors, as_of);
    },
    onProgress,
  );
  return {
    job: 'mature',
    as_of: as_of.toISOString(),
    lots_matured: lots,
    points_matured: pt4ToJson(points),
    skipped_members,
  };
}

function mergeFloors(floors: readonly FloorMove[]): FloorMove[] {
  const m = new Map<string, FloorMove>();
  for (const f of floors) {
    const prev = m.get(f.account.program_id);
    m.set(f.account.program_id, { account: f.account, delta_pt4: (prev?.delta_pt4 ?? 0n) + f.delta_pt4 });
  }
  return [...m.values()];
}
