import { newId } from './ids.ts';
import { sql } from 'kysely';
import type { Group } from '../domain/config/group.ts';
import { ratioToJson } from '../domain/earn/codec.ts';
import { distribute } from '../domain/earn/rounding.ts';
import type { GroupAllocation } from '../domain/lots/group-plan.ts';
import { isWholePt4, pt4ToJson, type Pt4 } from '../domain/points.ts';
import { AppError } from '../errors.ts';
import { memberAccount, systemAccount } from '../ledger/accounts.ts';
import type { LotMove, NewLot, PostingInput } from '../ledger/entry.ts';
import { payDebtFromNewLots } from '../ledger/debt-paydown.ts';
import { postEntry, type Trx } from '../ledger/post.ts';
import { memberState } from '../ledger/read.ts';
import { requireGroup } from './config.ts';
import type { Actor, Ctx } from './context.ts';
import { claimIdempotencyKey, requestHash, storeOutcome } from './idempotency.ts';
import { resolvePaidDebts } from './events/accrue.ts';
import { enroll, lockExistingMembers } from './members.ts';
import { remainingBalances } from './redemptions/spendable.ts';
import { overpaidDetail, planSpend } from './redemptions/spend-plan.ts';
import { inTransaction, PREPARED } from './transaction.ts';

// POST /v1/transfers: points move from one member to another, earliest expiry first from the
// sender. A program transfer lands in the same program; a group transfer spends the sender's
// whole pool and lands in the receiver's default program. The receiver's lots keep the issuing
// brand and expiry of the points they came from, so a transfer neither moves a liability between
// brands nor resets an expiry.

export interface TransferRequest {
  readonly from_member_id: string;
  readonly to_member_id: string;
  readonly points_pt4: Pt4;
  readonly program_id?: string | undefined;
  readonly group_transfer?: boolean | undefined;
  readonly idempotency_key: string;
}

export async function transfer(
  ctx: Ctx,
  req: TransferRequest,
  raw: unknown,
  actor: Actor,
): Promise<{ http_status: number; body: Record<string, unknown> }> {
  const group = await requireGroup(ctx);
  const isGroup = req.group_transfer ?? false;
  if (!isGroup && !req.program_id)
    throw new AppError('INVALID_REQUEST', 'Give program_id, or group_transfer: true', {
      field: 'program_id',
    });
  if (isGroup && req.program_id)
    throw new AppError('INVALID_REQUEST', 'Give program_id or group_transfer: true, not both', {
      field: 'program_id',
    });
  const program_id = isGroup ? group.default_program_id : req.program_id!;
  const program = group.programs.get(program_id);
  if (!program)
    throw new AppError('UNKNOWN_PROGRAM', `Program ${program_id} is not in the configuration`, {
      field: 'program_id',
    });
  if (req.from_member_id === req.to_member_id)
    throw new AppError('INVALID_REQUEST', 'A member cannot transfer to themselves', {
      field: 'to_member_id',
    });
  if (req.points_pt4 <= 0n)
    throw new AppError('INVALID_AMOUNT', 'points must be positive', { field: 'points' });
  if (program.rounding !== 'accumulate' && !isWholePt4(req.points_pt4))
    throw new AppError('INVALID_AMOUNT', `${program_id} points are whole points`, { field: 'points' });
  if (!program.transfer_enabled)
    throw new AppError('INVALID_REQUEST', `Transfers are disabled in ${program_id}`, { field: 'program_id' });
  const hash = requestHash(raw);

  return inTransaction(
    ctx.db,
    async (trx) => {
      const now = ctx.clock.now();
      const replay = await claimIdempotencyKey(trx, 'transfer', req.idempotency_key, hash, now);
      if (replay) return replay;
      await lockExistingMembers(trx, [req.from_member_id, req.to_member_id]);
      // A group transfer spends only the programs that allow transfers: a program's own switch
      // and daily limit hold whichever kind of transfer takes its points.
      const transferable = [...group.programs.values()].filter((p) => p.transfer_enabled).map((p) => p.id);
      const spend = await planSpend(
        trx,
        group,
        req.from_member_id,
        isGroup
          ? { group_redemption: true, program_id, programs: transferable }
          : { group_redemption: false, program_id },
        req.points_pt4,
        now,
      );
      await checkDailyLimits(trx, group, req.from_member_id, spend.plan.by_program, now);
      if (spend.plan.allocations.length === 0) {
        throw new AppError(
          'INSUFFICIENT_POINTS',
          `Not enough points: ${pt4ToJson(spend.plan.available_default_pt4)} available`,
          { available: pt4ToJson(spend.plan.available_default_pt4), requested: pt4ToJson(req.points_pt4) },
        );
      }
      const id = newId('trf');
      await enroll(trx, req.to_member_id, [program_id], now);
      const built = buildTransfer(group, spend.plan.allocations, spend.lots, req, program_id, isGroup);
      const { postings, moves } = built;
      // Points received pay the receiver's recorded debt in the program first (debt-paydown.ts).
      const debt = -((await memberState(trx, req.to_member_id)).get(program_id)?.floor_pt4 ?? 0n);
      const { lots, floors, paid_pt4 } = payDebtFromNewLots(built.lots, req.to_member_id, program_id, debt);
      const posted = await postEntry(trx, {
        kind: 'transfer',
        member_id: req.from_member_id,
        at: now,
        request_id: actor.request_id,
        key_id: actor.key_id,
        ref_type: 'transfer',
        ref_id: id,
        detail: {
          transfer_id: id,
          to_member_id: req.to_member_id,
          group_transfer: isGroup,
          ...overpaidDetail(spend),
        },
        postings,
        lot_moves: moves,
        new_lots: lots,
        floor_moves: floors,
      });
      await resolvePaidDebts(trx, req.to_member_id, floors, now, 'paid down by a transfer received');
      await trx
        .insertInto('transfers')
        .values({
          id,
          from_member_id: req.from_member_id,
          to_member_id: req.to_member_id,
          program_id,
          group_transfer: isGroup,
          points_pt4: req.points_pt4,
          created_at: now,
          entry_id: posted.entry_id,
        })
        .execute();
      const body = {
        transfer_id: id,
        from_member_id: req.from_member_id,
        to_member_id: req.to_member_id,
        group_transfer: isGroup,
        program_id,
        points: pt4ToJson(req.points_pt4),
        debited_by_program: spend.plan.by_program.map((p) => ({
          program_id: p.program_id,
          points: pt4ToJson(p.points_pt4),
        })),
        credited: {
          program_id,
          points: pt4ToJson(lots.reduce((s, l) => s + l.points_pt4, 0n)),
          debt_paid: pt4ToJson(paid_pt4),
        },
        // The sender's last lot is rounded up (group-plan.ts): what was debited above the value of
        // the points credited, in the common currency. Zero in a program transfer.
        overpaid: {
          value_exact: ratioToJson(spend.plan.overpaid_value),
          program_id: spend.plan.rounding_program_id,
        },
        from_balances: await remainingBalances(trx, req.from_member_id),
        to_balances: await remainingBalances(trx, req.to_member_id),
      };
      await storeOutcome(trx, 'transfer', req.idempotency_key, 201, body);
      return { http_status: 201, body };
    },
    PREPARED,
  );
}

/**
 * Each program's daily limit bounds the points that leave the member's lots in it by transfer in
 * a UTC day, program and group transfers alike: counted from the allocations of the member's
 * transfers that day, so a group transfer cannot carry a program's points past its limit.
 */
async function checkDailyLimits(
  trx: Trx,
  group: Group,
  member_id: string,
  debits: readonly { program_id: string; points_pt4: Pt4 }[],
  now: Date,
): Promise<void> {
  const limited = debits.filter((d) => group.programs.get(d.program_id)?.transfer_daily_limit_pt4 != null);
  if (limited.length === 0) return;
  const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const res = await sql<{ program_id: string; used: bigint }>`
    select a.program_id, sum(a.points_pt4)::int8 as used
    from transfers t join lot_allocations a on a.entry_id = t.entry_id and a.kind = 'transfer_out'
    where t.from_member_id = ${member_id} and t.created_at >= ${dayStart}
      and a.program_id in (${sql.join(limited.map((d) => d.program_id))})
    group by a.program_id`.execute(trx);
  const usedBy = new Map(res.rows.map((r) => [r.program_id, r.used]));
  for (const d of limited) {
    const limit = group.programs.get(d.program_id)!.transfer_daily_limit_pt4!;
    const used = usedBy.get(d.program_id) ?? 0n;
    if (used + d.points_pt4 > limit)
      throw new AppError(
        'TRANSFER_LIMIT_EXCEEDED',
        `The daily transfer limit of ${pt4ToJson(limit)} points in ${d.program_id} would be exceeded`,
        { program_id: d.program_id, limit: pt4ToJson(limit), used_today: pt4ToJson(used) },
      );
  }
}

/**
 * Sender: each allocation leaves its lot into the program's transfer clearing account. Receiver:
 * one lot per source allocation, same issuer and expiry. In a group transfer the receiver's N
 * default-program points are split over the source allocations by value, and each program's
 * side clears through its conversion account.
 */
function buildTransfer(
  group: Group,
  allocations: readonly GroupAllocation[],
  lots: ReadonlyMap<string, { expires_at: Date | null; awarded_at: Date }>,
  req: TransferRequest,
  program_id: string,
  isGroup: boolean,
) {
  const postings: PostingInput[] = [];
  const moves: LotMove[] = [];
  const newLots: NewLot[] = [];
  const clearing = isGroup ? 'conversion' : 'transfer';
  const unit = group.programs.get(program_id)!.rounding === 'accumulate' ? 1n : 10_000n;
  // A group transfer credits exactly the request: the sender's last lot is rounded up
  // (group-plan.ts), so what the sender pays is worth at least what the receiver gets and no
  // value is created by the rounding. Crediting what was paid, floored, instead gave the
  // receiver less than asked while the answer said the full amount (audit F2).
  const credited = isGroup
    ? distribute(
        req.points_pt4,
        allocations.map((a) => a.value),
        unit,
      )
    : allocations.map((a) => a.points_pt4);
  allocations.forEach((a, i) => {
    const lot = lots.get(a.lot_id)!;
    postings.push({
      account: memberAccount(a.program_id, req.from_member_id, 'member_available'),
      amount_pt4: -a.points_pt4,
    });
    postings.push({ account: systemAccount(a.program_id, clearing, group.id), amount_pt4: a.points_pt4 });
    moves.push({
      lot_id: BigInt(a.lot_id),
      program_id: a.program_id,
      member_id: req.from_member_id,
      issuing_brand_id: a.issuing_brand_id,
      kind: 'transfer_out',
      points_pt4: a.points_pt4,
      remaining_delta_pt4: -a.points_pt4,
      held_delta_pt4: 0n,
      state_from: 'available',
      value_common: ratioToJson(a.value),
    });
    const pts = credited[i]!;
    if (pts <= 0n) return;
    postings.push({
      account: memberAccount(program_id, req.to_member_id, 'member_available'),
      amount_pt4: pts,
    });
    postings.push({ account: systemAccount(program_id, clearing, group.id), amount_pt4: -pts });
    newLots.push({
      program_id,
      member_id: req.to_member_id,
      issuing_brand_id: a.issuing_brand_id,
      points_pt4: pts,
      remaining_pt4: pts,
      state: 'available',
      awarded_at: lot.awarded_at,
      available_at: lot.awarded_at,
      expires_at: lot.expires_at,
      source_event_id: null,
    });
  });
  return { postings, moves, lots: newLots };
}
