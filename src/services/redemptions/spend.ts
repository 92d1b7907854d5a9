import type { Insertable } from 'kysely';
import type { Group } from '../../domain/config/group.ts';
import { ratioToJson } from '../../domain/earn/codec.ts';
import { pt4ToJson } from '../../domain/points.ts';
import { AppError } from '../../errors.ts';
import { memberAccount, systemAccount } from '../../ledger/accounts.ts';
import type { EntryInput, LotMove, PostingInput } from '../../ledger/entry.ts';
import { postEntries, type Trx } from '../../ledger/post.ts';
import type { OpenLot } from '../../ledger/read.ts';
import type { RedemptionsTable, SettlementFlowsTable } from '../../store/schema.ts';
import { deferWrite } from '../../store/write-behind.ts';
import type { Actor } from '../context.ts';
import { newId } from '../ids.ts';
import type { RedeemRequest } from './redeem.ts';
import type { takeRewardStock } from './rewards.ts';
import { settlementRows } from './settlement.ts';
import { balancesAfter, type BalanceRow } from './spendable.ts';
import {
  checkPrecision,
  overpaidDetail,
  planFromPool,
  type SpendPlan,
  type SpendScope,
} from './spend-plan.ts';
import type { SpendPool } from './spend-read.ts';
import { redemptionView } from './view.ts';

// One redemption's spend in two steps: planned without I/O against the lots and accounts read
// under the member's lock (buildSpend), then written (writeSpends). The redemptions of one shared
// transaction (shared.ts) plan one after another, each against what the ones before it left, and
// are written together: one statement per table for all of them instead of about ten each, every
// one of which PostgreSQL would parse and plan on its own (docs/performance.md).

/** What a redemption is spent from: the member's spend pool and accounts under its lock. */
export interface SpendRead {
  /** Read at `now` (spend-read.ts). */
  readonly pool: SpendPool;
  readonly accounts: readonly BalanceRow[];
  readonly now: Date;
  /** The id reserved for the spend's entry (reserveIds). */
  readonly entry_id: bigint;
}

/** A validated request with the configuration it is spent under. */
export interface SpendCall {
  readonly group: Group;
  readonly scope: SpendScope;
  readonly req: RedeemRequest;
  readonly actor: Actor;
}

export type Reward = Awaited<ReturnType<typeof takeRewardStock>>;

/** A planned spend: every row it writes, and the answer. */
export interface Spend {
  readonly entry: EntryInput;
  readonly entry_id: bigint;
  readonly redemption: Insertable<RedemptionsTable>;
  readonly flows: readonly Insertable<SettlementFlowsTable>[];
  readonly body: Record<string, unknown>;
  readonly moves: readonly LotMove[];
  readonly postings: readonly PostingInput[];
  /** The programs it spent from. */
  readonly programs: readonly string[];
}

/**
 * Plans the spend, or throws the refusal (not enough points, a bad amount …) before any write.
 * Null when the plan needs lots past those the pool holds: build it again over wholePool.
 */
export function buildSpend(call: SpendCall, read: SpendRead, reward: Reward | null): Spend | null {
  const { group, scope, req, actor } = call;
  const { pool, accounts, now, entry_id } = read;
  const points = reward ? reward.points_pt4 : (req.points_pt4 ?? 0n);
  if (reward && req.points_pt4 !== undefined && req.points_pt4 !== reward.points_pt4) {
    throw new AppError('INVALID_AMOUNT', `The reward costs ${pt4ToJson(reward.points_pt4)} points`, {
      field: 'points',
    });
  }
  checkPrecision(group, scope.program_id, points);
  const spend = planFromPool(group, pool, scope, points, now);
  if (!spend) return null;
  if (spend.plan.allocations.length === 0 && points > 0n) {
    throw new AppError(
      'INSUFFICIENT_POINTS',
      `Not enough points: ${pt4ToJson(spend.plan.available_default_pt4)} available`,
      {
        available: pt4ToJson(spend.plan.available_default_pt4),
        requested: pt4ToJson(points),
        program_id: scope.program_id,
        group_redemption: scope.group_redemption,
      },
    );
  }
  const capture = req.capture ?? true;
  const id = newId('rdm');
  const hold_minutes = group.programs.get(scope.program_id)?.hold_timeout_minutes ?? 30;
  const hold_expires_at = capture ? null : new Date(now.getTime() + hold_minutes * 60_000);
  const { entry, moves, postings } = spendEntry(spend, { id, req, capture, now, actor });
  const view = redemptionView(group, spend, {
    id,
    status: capture ? 'captured' : 'held',
    group_redemption: scope.group_redemption,
    points_pt4: points,
    now,
    reward,
  });
  return {
    entry,
    entry_id,
    redemption: {
      id,
      member_id: req.member_id,
      brand_id: req.brand_id,
      group_redemption: scope.group_redemption,
      program_id: scope.program_id,
      status: capture ? 'captured' : 'held',
      points_pt4: points,
      order_id: req.order_id ?? null,
      reward_id: req.reward_id ?? null,
      quantity: reward ? (req.quantity ?? 1) : null,
      created_at: now,
      hold_expires_at,
      resolved_at: capture ? now : null,
      entry_id,
      detail: JSON.stringify({
        idempotency_key: req.idempotency_key,
        ...overpaidDetail(spend),
      }) as never,
    },
    flows: capture ? settlementRows(group, id, req.brand_id, entry_id, now, moves) : [],
    body: {
      ...view,
      ...(hold_expires_at ? { hold_expires_at: hold_expires_at.toISOString() } : {}),
      balances: balancesAfter(req.member_id, accounts, postings),
    },
    moves,
    postings,
    programs: spend.plan.by_program.map((p) => p.program_id),
  };
}

/**
 * Writes planned spends, in order, as deferred writes (they travel with the transaction's next
 * statement or its commit): their entries, then their redemption rows, then their settlement
 * flows. The ledger's conditional updates still refuse any spend the plan got wrong.
 */
export async function writeSpends(trx: Trx, spends: readonly Spend[]): Promise<void> {
  if (spends.length === 0) return;
  await postEntries(
    trx,
    spends.map((s) => s.entry),
    { entries: spends.map((s) => s.entry_id), lots: [] },
  );
  await deferWrite(trx, trx.insertInto('redemptions').values(spends.map((s) => s.redemption)));
  const flows = spends.flatMap((s) => s.flows);
  if (flows.length > 0) await deferWrite(trx, trx.insertInto('settlement_flows').values(flows));
}

/** Whole-point programs take whole points; accumulate programs up to 4 decimals. */

/** Debits the member per program (to the brand's redemption account, or to held) and moves the lots. */
function spendEntry(
  spend: SpendPlan,
  c: { id: string; req: RedeemRequest; capture: boolean; now: Date; actor: Actor },
): { entry: EntryInput; moves: LotMove[]; postings: PostingInput[] } {
  const { member_id, brand_id } = c.req;
  const postings: PostingInput[] = [];
  for (const p of spend.plan.by_program) {
    postings.push({
      account: memberAccount(p.program_id, member_id, 'member_available'),
      amount_pt4: -p.points_pt4,
    });
    postings.push(
      c.capture
        ? { account: systemAccount(p.program_id, 'redemption', brand_id), amount_pt4: p.points_pt4 }
        : { account: memberAccount(p.program_id, member_id, 'member_held'), amount_pt4: p.points_pt4 },
    );
  }
  const moves: LotMove[] = spend.plan.allocations.map((a) => ({
    lot_id: BigInt(a.lot_id),
    program_id: a.program_id,
    member_id,
    issuing_brand_id: a.issuing_brand_id,
    kind: c.capture ? 'spend' : 'hold',
    points_pt4: a.points_pt4,
    remaining_delta_pt4: c.capture ? -a.points_pt4 : 0n,
    held_delta_pt4: c.capture ? 0n : a.points_pt4,
    state_from: 'available',
    value_common: ratioToJson(a.value),
  }));
  const entry: EntryInput = {
    kind: c.capture ? 'redemption' : 'hold',
    member_id,
    at: c.now,
    request_id: c.actor.request_id,
    key_id: c.actor.key_id,
    ref_type: 'redemption',
    ref_id: c.id,
    detail: {
      redemption_id: c.id,
      brand_id,
      ...overpaidDetail(spend),
    },
    postings,
    lot_moves: moves,
  };
  return { entry, moves, postings };
}

/** The pool as a spend's moves leave it (remaining spent, points held). */
export function poolAfter(pool: SpendPool, moves: readonly LotMove[]): SpendPool {
  const delta = new Map(moves.map((m) => [m.lot_id, m]));
  const totals = new Map(pool.totals);
  for (const m of moves)
    totals.set(m.program_id, (totals.get(m.program_id) ?? 0n) + m.remaining_delta_pt4 - m.held_delta_pt4);
  const lots = pool.lots.map((l): OpenLot => {
    const m = delta.get(l.id);
    return m
      ? {
          ...l,
          remaining_pt4: l.remaining_pt4 + m.remaining_delta_pt4,
          held_pt4: l.held_pt4 + m.held_delta_pt4,
        }
      : l;
  });
  return { lots, totals, complete: pool.complete };
}
