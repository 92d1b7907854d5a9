import { newId } from '../ids.ts';
import type { Group } from '../../domain/config/group.ts';
import { ratioToJson } from '../../domain/earn/codec.ts';
import { isWholePt4, pt4ToJson, type Pt4 } from '../../domain/points.ts';
import { AppError } from '../../errors.ts';
import { memberAccount, systemAccount } from '../../ledger/accounts.ts';
import type { LotMove, PostingInput } from '../../ledger/entry.ts';
import { idsOf, postEntry, reserveIds, type EntryIds, type Trx } from '../../ledger/post.ts';
import { deferWrite, together } from '../../store/write-behind.ts';
import { openLotsQuery, type OpenLot } from '../../ledger/read.ts';
import { requireGroup } from '../config.ts';
import type { Actor, Ctx } from '../context.ts';
import { extendInactivityExpiry } from '../events/inactivity.ts';
import {
  claimFreeKeyQuery,
  claimQuery,
  priorAnswer,
  priorsQuery,
  priorUnlessClaimed,
  requestHash,
  storeOutcome,
} from '../idempotency.ts';
import { lockQuery } from '../members.ts';
import { inTransaction } from '../transaction.ts';
import { takeRewardStock } from './rewards.ts';
import { recordSettlement } from './settlement.ts';
import { shareTransaction, statsOf, type Outcome, type SharedJob } from './shared.ts';
import {
  planFromLots,
  resolveScope,
  spendPrograms,
  tooSmallToPay,
  type SpendPlan,
  type SpendScope,
} from './spend-plan.ts';
import { redemptionView, type RedemptionView } from './view.ts';

// POST /v1/redemptions: spend a member's points at a brand, from one program or from the whole
// pool, earliest expiry first. With capture the points are spent at once; without, they are
// held until capture, release or the hold's timeout. One transaction: the member is locked, the
// lots are read and allocated, and the member's balance is debited by a conditional update, so
// no concurrency can take a balance below zero.

export interface RedeemRequest {
  readonly member_id: string;
  readonly brand_id: string;
  readonly group_redemption?: boolean | undefined;
  readonly program_id?: string | undefined;
  readonly points?: number | undefined;
  readonly points_pt4?: Pt4 | undefined;
  readonly order_id?: string | undefined;
  readonly idempotency_key: string;
  readonly capture?: boolean | undefined;
  readonly reward_id?: string | undefined;
  readonly quantity?: number | undefined;
}

export type { Outcome };

export async function redeem(ctx: Ctx, req: RedeemRequest, actor: Actor): Promise<Outcome> {
  const group = await requireGroup(ctx);
  const scope = resolveScope(group, req.brand_id, req.group_redemption ?? false, req.program_id);
  // The hash is over what the caller sent; points_pt4 is our parse of `points`.
  const { points_pt4, ...hashed } = req;
  void points_pt4;
  const hash = requestHash(hashed);
  const call: Call = { ctx, group, scope, hash, req, actor };
  const run = (trx: Trx) => redeemIn(trx, call);
  const alone = () => inTransaction(ctx.db, run);
  if (!plannable(group, scope, req)) return alone();
  // Redemptions that arrive together share one transaction and one read (shared.ts).
  const job: RedemptionJob = {
    key: req.idempotency_key,
    req,
    scope,
    alone,
    // Only redemptions share these transactions (shared.ts serves nothing else).
    prepare: (trx, batch) => readTogether(trx, ctx, group, batch as readonly RedemptionJob[]),
    inBatch: (trx, shared) => {
      // A member that does not exist is answered as alone (MEMBER_NOT_FOUND), and so is a
      // redemption validated under another configuration than the read's (a new version applied
      // meanwhile): should its writes make the plans after it stale, the ledger's checks fail the
      // shared transaction and each redemption runs alone.
      const member = shared.group === group ? shared.members.get(req.member_id) : undefined;
      return member ? redeemPlanned(trx, call, shared, member) : run(trx);
    },
  };
  return shareTransaction(ctx, job);
}

interface RedemptionJob extends SharedJob<SharedRead> {
  readonly req: RedeemRequest;
  readonly scope: SpendScope;
}

/**
 * Whether the redemption can be planned against a read shared with others. A reward takes its
 * stock with a round trip of its own, and a spend in an inactivity-expiry program moves its lots'
 * expiry (extendInactivityExpiry), which the next plan would have to see: those run alone.
 */
function plannable(group: Group, scope: SpendScope, req: RedeemRequest): boolean {
  return (
    req.reward_id === undefined &&
    spendPrograms(group, scope).every((p) => group.programs.get(p)?.expiry.kind !== 'inactivity')
  );
}

/** A validated redemption request with what it runs against. */
interface Call {
  readonly ctx: Ctx;
  readonly group: Group;
  readonly scope: SpendScope;
  /** The request's fingerprint under its idempotency key. */
  readonly hash: string;
  readonly req: RedeemRequest;
  readonly actor: Actor;
}

/** The redemption's transaction body: everything after the request was validated. */
async function redeemIn(trx: Trx, call: Call): Promise<Outcome> {
  const { ctx, group, scope, hash, req } = call;
  const now = ctx.clock.now();
  // Claim, member lock and what the plan and the answer read, in one round trip: each read
  // takes its snapshot after the lock is granted.
  const ids = await reserveIds(trx, 1, 0);
  const [claimed, locked, lots, accounts] = await together(trx, [
    claimQuery(trx, 'redemption', req.idempotency_key, hash, now),
    lockQuery(trx, [req.member_id]),
    openLotsQuery(trx, req.member_id, spendPrograms(group, scope)),
    spendableBalancesQuery(trx, req.member_id),
  ]);
  const prior = await priorUnlessClaimed(trx, 'redemption', req.idempotency_key, hash, claimed);
  if (prior) return { http_status: 200, body: { ...prior, replayed: true } };
  if (locked.length === 0)
    throw new AppError('MEMBER_NOT_FOUND', `No member ${req.member_id}`, { member_id: req.member_id });
  const done = await spendFrom(trx, call, {
    lots,
    accounts,
    now,
    ids: idsOf(await ids.rows()),
  });
  return done.outcome;
}

/**
 * What the redemptions of one shared transaction read together, under their members' locks, in
 * one round trip; each then plans against its member's lots as the ones before it left them.
 */
interface SharedRead {
  /** The configuration the read was made under. */
  readonly group: Group;
  /** The members that exist, with their open lots in the batch's programs and spendable accounts. */
  readonly members: ReadonlyMap<string, MemberRead>;
  /** Keys of the batch already used, with what they answered. */
  readonly priors: ReadonlyMap<string, { request_hash: string; response: Record<string, unknown> }>;
  /** Entry ids reserved for the batch, one per redemption, taken in turn. */
  readonly ids: EntryIds;
  taken: number;
}

/** One member's lots and accounts as the redemptions planned so far left them. */
interface MemberRead {
  lots: OpenLot[];
  accounts: BalanceRow[];
}

async function readTogether(
  trx: Trx,
  ctx: Ctx,
  group: Group,
  batch: readonly RedemptionJob[],
): Promise<SharedRead> {
  const members = [...new Set(batch.map((j) => j.req.member_id))];
  const programs = [...new Set(batch.flatMap((j) => spendPrograms(group, j.scope)))];
  const ids = await reserveIds(trx, batch.length, 0);
  const [locked, lots, accounts, priors] = await together(trx, [
    lockQuery(trx, members),
    openLotsQuery(trx, members, programs),
    spendableBalancesQuery(trx, members),
    priorsQuery(
      trx,
      'redemption',
      batch.map((j) => j.key),
    ),
  ]);
  const byMember = new Map<string, MemberRead>(locked.map((m) => [m.id, { lots: [], accounts: [] }]));
  for (const l of lots) byMember.get(l.member_id)?.lots.push(l);
  for (const a of accounts) byMember.get(a.owner_id)?.accounts.push(a);
  statsOf(ctx).read_together += batch.length;
  return {
    group,
    members: byMember,
    priors: new Map(priors.map((p) => [p.key, p])),
    ids: idsOf(await ids.rows()),
    taken: 0,
  };
}

/** redeemIn against a SharedRead: the key's prior answer, or a spend from the lots as they stand. */
async function redeemPlanned(trx: Trx, call: Call, shared: SharedRead, member: MemberRead): Promise<Outcome> {
  const { ctx, group, scope, hash, req } = call;
  const now = ctx.clock.now();
  const prior = shared.priors.get(req.idempotency_key);
  if (prior)
    return { http_status: 200, body: { ...priorAnswer(prior, req.idempotency_key, hash), replayed: true } };
  const ids: EntryIds = { entries: shared.ids.entries.slice(shared.taken, shared.taken + 1), lots: [] };
  // The key was free when read under the lock; a concurrent claim makes this insert fail, and the
  // shared transaction with it (each redemption then runs alone and answers as it should).
  await deferWrite(trx, claimFreeKeyQuery(trx, 'redemption', req.idempotency_key, hash, now));
  const programs = new Set(spendPrograms(group, scope));
  const done = await spendFrom(trx, call, {
    lots: member.lots.filter((l) => programs.has(l.program_id)),
    accounts: member.accounts,
    now,
    ids,
  });
  // Only a redemption that went through moves what the next one sees (a refused one threw).
  shared.taken += 1;
  member.lots = lotsAfter(member.lots, done.moves);
  member.accounts = accountsAfter(req.member_id, member.accounts, done.postings);
  return done.outcome;
}

/** The spend itself, from the lots and accounts read under the member's lock. */
async function spendFrom(
  trx: Trx,
  call: Call,
  read: { lots: readonly OpenLot[]; accounts: readonly BalanceRow[]; now: Date; ids: EntryIds },
): Promise<{ outcome: Outcome; moves: LotMove[]; postings: PostingInput[] }> {
  const { group, scope, req, actor } = call;
  const { lots, accounts, now } = read;
  const reward = req.reward_id
    ? await takeRewardStock(
        trx,
        req.reward_id,
        req.quantity ?? 1,
        req.brand_id,
        scope.program_id,
        scope.group_redemption,
        now,
      )
    : null;
  const points = reward ? reward.points_pt4 : (req.points_pt4 ?? 0n);
  if (reward && req.points_pt4 !== undefined && req.points_pt4 !== reward.points_pt4) {
    throw new AppError('INVALID_AMOUNT', `The reward costs ${pt4ToJson(reward.points_pt4)} points`, {
      field: 'points',
    });
  }
  checkPrecision(group, scope.program_id, points);
  const spend = planFromLots(group, lots, scope, points, now);
  const tooSmall = tooSmallToPay(spend, points);
  if (tooSmall) throw tooSmall;
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
  const {
    entry_id: entry,
    moves,
    postings,
  } = await postSpend(trx, spend, read.ids, {
    id,
    member_id: req.member_id,
    brand_id: req.brand_id,
    capture,
    now,
    actor,
  });
  const view = redemptionView(group, spend, {
    id,
    status: capture ? 'captured' : 'held',
    group_redemption: scope.group_redemption,
    points_pt4: points,
    now,
    reward,
  });
  const insert = trx.insertInto('redemptions').values({
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
    hold_expires_at: capture ? null : new Date(now.getTime() + hold_minutes * 60_000),
    resolved_at: capture ? now : null,
    entry_id: entry,
    detail: JSON.stringify({
      idempotency_key: req.idempotency_key,
      absorbed_value: ratioToJson(spend.plan.absorbed_value),
      absorbing_program_id: spend.plan.absorbing_program_id,
    }) as never,
  });
  await deferWrite(trx, insert);
  if (capture) await recordSettlement(trx, group, id, req.brand_id, entry, now, moves);
  for (const p of spend.plan.by_program) {
    const program = group.programs.get(p.program_id);
    if (program) await extendInactivityExpiry(trx, req.member_id, program, now);
  }
  const body = {
    ...view,
    ...(capture ? {} : { hold_expires_at: new Date(now.getTime() + hold_minutes * 60_000).toISOString() }),
    balances: balancesAfter(req.member_id, accounts, postings),
  };
  await storeOutcome(trx, 'redemption', req.idempotency_key, 201, body);
  return { outcome: { http_status: 201, body }, moves, postings };
}

/** Whole-point programs take whole points; accumulate programs up to 4 decimals. */
function checkPrecision(group: Group, program_id: string, points: Pt4): void {
  const program = group.programs.get(program_id);
  if (points <= 0n) throw new AppError('INVALID_AMOUNT', 'points must be positive', { field: 'points' });
  if (program && program.rounding !== 'accumulate' && !isWholePt4(points)) {
    throw new AppError('INVALID_AMOUNT', `${program_id} points are whole points`, { field: 'points' });
  }
}

interface SpendContext {
  readonly id: string;
  readonly member_id: string;
  readonly brand_id: string;
  readonly capture: boolean;
  readonly now: Date;
  readonly actor: Actor;
}

/** Debits the member per program (to the brand's redemption account, or to held) and moves the lots. */
async function postSpend(
  trx: Trx,
  spend: SpendPlan,
  ids: EntryIds,
  c: SpendContext,
): Promise<{ entry_id: bigint; moves: LotMove[]; postings: PostingInput[] }> {
  const postings: PostingInput[] = [];
  for (const p of spend.plan.by_program) {
    postings.push({
      account: memberAccount(p.program_id, c.member_id, 'member_available'),
      amount_pt4: -p.points_pt4,
    });
    postings.push(
      c.capture
        ? { account: systemAccount(p.program_id, 'redemption', c.brand_id), amount_pt4: p.points_pt4 }
        : { account: memberAccount(p.program_id, c.member_id, 'member_held'), amount_pt4: p.points_pt4 },
    );
  }
  const moves: LotMove[] = spend.plan.allocations.map((a) => ({
    lot_id: BigInt(a.lot_id),
    program_id: a.program_id,
    member_id: c.member_id,
    issuing_brand_id: a.issuing_brand_id,
    kind: c.capture ? 'spend' : 'hold',
    points_pt4: a.points_pt4,
    remaining_delta_pt4: c.capture ? -a.points_pt4 : 0n,
    held_delta_pt4: c.capture ? 0n : a.points_pt4,
    state_from: 'available',
    value_common: ratioToJson(a.value),
  }));
  const posted = await postEntry(
    trx,
    {
      kind: c.capture ? 'redemption' : 'hold',
      member_id: c.member_id,
      at: c.now,
      request_id: c.actor.request_id,
      key_id: c.actor.key_id,
      ref_type: 'redemption',
      ref_id: c.id,
      detail: {
        redemption_id: c.id,
        brand_id: c.brand_id,
        absorbed_value: ratioToJson(spend.plan.absorbed_value),
        absorbing_program_id: spend.plan.absorbing_program_id,
      },
      postings,
      lot_moves: moves,
    },
    ids,
  );
  return { entry_id: posted.entry_id, moves, postings };
}

type BalanceRow = { program_id: string; kind: string; balance_pt4: bigint };

/** The members' available and held accounts, as remainingBalances reports them. */
export const spendableBalancesQuery = (trx: Trx, member_ids: string | readonly string[]) =>
  trx
    .selectFrom('accounts')
    .select(['owner_id', 'program_id', 'kind', 'balance_pt4'])
    .where('owner_id', 'in', typeof member_ids === 'string' ? [member_ids] : member_ids)
    .where('kind', 'in', ['member_available', 'member_held'])
    .orderBy('owner_id')
    .orderBy('program_id');

export async function remainingBalances(
  trx: Trx,
  member_id: string,
): Promise<{ program_id: string; available: number; held: number }[]> {
  return balancesView(await spendableBalancesQuery(trx, member_id).execute());
}

/**
 * remainingBalances without reading them again: the accounts as read under the member's lock,
 * moved by the entry's postings (the lock is held until commit, so nothing else moves them).
 */
const balancesAfter = (member_id: string, before: readonly BalanceRow[], postings: readonly PostingInput[]) =>
  balancesView(accountsAfter(member_id, before, postings));

/** The member's spendable account rows moved by postings, by program. */
function accountsAfter(
  member_id: string,
  before: readonly BalanceRow[],
  postings: readonly PostingInput[],
): BalanceRow[] {
  const rows = new Map(before.map((r) => [`${r.program_id}|${r.kind}`, { ...r }]));
  for (const { account, amount_pt4 } of postings) {
    if (account.owner_id !== member_id) continue;
    if (account.kind !== 'member_available' && account.kind !== 'member_held') continue;
    const key = `${account.program_id}|${account.kind}`;
    const row = rows.get(key) ?? { program_id: account.program_id, kind: account.kind, balance_pt4: 0n };
    rows.set(key, { ...row, balance_pt4: row.balance_pt4 + amount_pt4 });
  }
  return [...rows.values()].sort((a, b) =>
    a.program_id < b.program_id ? -1 : a.program_id > b.program_id ? 1 : 0,
  );
}

/** The lots as a spend's moves leave them (remaining spent, points held). */
function lotsAfter(lots: readonly OpenLot[], moves: readonly LotMove[]): OpenLot[] {
  const delta = new Map(moves.map((m) => [m.lot_id, m]));
  return lots.map((l) => {
    const m = delta.get(l.id);
    return m
      ? {
          ...l,
          remaining_pt4: l.remaining_pt4 + m.remaining_delta_pt4,
          held_pt4: l.held_pt4 + m.held_delta_pt4,
        }
      : l;
  });
}

function balancesView(
  rows: readonly BalanceRow[],
): { program_id: string; available: number; held: number }[] {
  const out = new Map<string, { program_id: string; available: number; held: number }>();
  for (const r of rows) {
    const b = out.get(r.program_id) ?? { program_id: r.program_id, available: 0, held: 0 };
    if (r.kind === 'member_available') b.available = pt4ToJson(r.balance_pt4);
    else b.held = pt4ToJson(r.balance_pt4);
    out.set(r.program_id, b);
  }
  return [...out.values()];
}

export type { RedemptionView };
