import type { Group } from '../../domain/config/group.ts';
import type { Pt4 } from '../../domain/points.ts';
import { AppError } from '../../errors.ts';
import { idsOf, reserveIds, type EntryIds, type Trx } from '../../ledger/post.ts';
import { deferWrite, together } from '../../store/write-behind.ts';
import { requireGroup } from '../config.ts';
import type { Actor, Ctx } from '../context.ts';
import { extendInactivityExpiry } from '../events/inactivity.ts';
import {
  claimWithAnswersQuery,
  claimQuery,
  priorAnswer,
  priorsQuery,
  priorUnlessClaimed,
  requestHash,
  storeOutcome,
} from '../idempotency.ts';
import { lockQuery } from '../members.ts';
import { inTransaction, PREPARED } from '../transaction.ts';
import { takeRewardStock } from './rewards.ts';
import { shareTransaction, statsOf, type Outcome, type SharedJob } from './shared.ts';
import { buildSpend, poolAfter, writeSpends, type Spend, type SpendCall } from './spend.ts';
import { resolveScope, spendPrograms, type SpendScope } from './spend-plan.ts';
import { poolOf, poolReads, poolsOf, wholePool, type SpendPool } from './spend-read.ts';
import { accountsAfter, spendableBalancesQuery, type BalanceRow } from './spendable.ts';
import type { RedemptionView } from './view.ts';

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
  const alone = () => inTransaction(ctx.db, run, PREPARED);
  if (!plannable(group, scope, req)) return alone();
  // Redemptions that arrive together share one transaction and one read (shared.ts).
  const job: RedemptionJob = {
    key: req.idempotency_key,
    req,
    scope,
    alone,
    // Only redemptions share these transactions (shared.ts serves nothing else).
    prepare: (trx, batch) => readTogether(trx, ctx, group, batch as readonly RedemptionJob[]),
    plan: (shared) => {
      // A member that does not exist is answered as alone (MEMBER_NOT_FOUND), and so is a
      // redemption validated under another configuration than the read's (a new version applied
      // meanwhile): should its writes make the plans after it stale, the ledger's checks fail the
      // shared transaction and each redemption runs alone. A member one of whose redemptions
      // needed more lots than the read holds (planInBatch) is no longer in it: answered as alone.
      const member = shared.group === group ? shared.members.get(req.member_id) : undefined;
      return member ? planInBatch(call, shared, member) : null;
    },
    inBatch: run,
    flush: flushPlanned,
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
interface Call extends SpendCall {
  readonly ctx: Ctx;
  /** The request's fingerprint under its idempotency key. */
  readonly hash: string;
}

/** The redemption's transaction body: everything after the request was validated. */
async function redeemIn(trx: Trx, call: Call): Promise<Outcome> {
  const { ctx, group, scope, hash, req } = call;
  const now = ctx.clock.now();
  // Claim, member lock and what the plan and the answer read, in one round trip: each read
  // takes its snapshot after the lock is granted.
  const ids = await reserveIds(trx, 1, 0);
  const programs = spendPrograms(group, scope);
  const [claimed, locked, lots, totals, accounts] = await together(trx, [
    claimQuery(trx, 'redemption', req.idempotency_key, hash, now),
    lockQuery(trx, [req.member_id]),
    ...poolReads(trx, [req.member_id], programs, now),
    spendableBalancesQuery(trx, req.member_id),
  ]);
  const prior = await priorUnlessClaimed(trx, 'redemption', req.idempotency_key, hash, claimed);
  if (prior) return { http_status: 200, body: { ...prior, replayed: true } };
  if (locked.length === 0)
    throw new AppError('MEMBER_NOT_FOUND', `No member ${req.member_id}`, { member_id: req.member_id });
  const [entry_id] = idsOf(await ids.rows()).entries;
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
  const read = { accounts, now, entry_id: entry_id! };
  const spend =
    buildSpend(call, { ...read, pool: poolOf(poolsOf(lots, totals), req.member_id) }, reward) ??
    buildSpend(call, { ...read, pool: await wholePool(trx, req.member_id, programs, now) }, reward)!;
  await writeSpends(trx, [spend]);
  for (const program_id of spend.programs) {
    const program = group.programs.get(program_id);
    if (program) await extendInactivityExpiry(trx, req.member_id, program, now, now);
  }
  await storeOutcome(trx, 'redemption', req.idempotency_key, 201, spend.body);
  return { http_status: 201, body: spend.body };
}

/**
 * What the redemptions of one shared transaction read together, under their members' locks, in
 * one round trip; each then plans against its member's lots as the ones before it left them.
 */
interface SharedRead {
  /** The configuration the read was made under. */
  readonly group: Group;
  /** The instant the pools were read at: every redemption of the batch is planned at it. */
  readonly now: Date;
  /**
   * The members that exist, with their spend pools in the batch's programs and spendable
   * accounts; a member whose redemption ran as redeemIn is removed (its pool is stale).
   */
  readonly members: Map<string, MemberRead>;
  /** Keys of the batch already used, with what they answered. */
  readonly priors: ReadonlyMap<string, { request_hash: string; response: Record<string, unknown> }>;
  /** Entry ids reserved for the batch, one per redemption, taken in turn. */
  readonly ids: EntryIds;
  taken: number;
  /** Planned spends not written yet, with the keys they claim (flushPlanned). */
  readonly pending: { spend: Spend; key: string; hash: string }[];
}

/** One member's spend pool and accounts as the redemptions planned so far left them. */
interface MemberRead {
  pool: SpendPool;
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
  const now = ctx.clock.now();
  const ids = await reserveIds(trx, batch.length, 0);
  const [locked, lots, totals, accounts, priors] = await together(trx, [
    lockQuery(trx, members),
    ...poolReads(trx, members, programs, now),
    spendableBalancesQuery(trx, members),
    priorsQuery(
      trx,
      'redemption',
      batch.map((j) => j.key),
    ),
  ]);
  const pools = poolsOf(lots, totals);
  const byMember = new Map<string, MemberRead>(
    locked.map((m) => [m.id, { pool: poolOf(pools, m.id), accounts: [] }]),
  );
  for (const a of accounts) byMember.get(a.owner_id)?.accounts.push(a);
  statsOf(ctx).read_together += batch.length;
  return {
    group,
    now,
    members: byMember,
    priors: new Map(priors.map((p) => [p.key, p])),
    ids: idsOf(await ids.rows()),
    taken: 0,
    pending: [],
  };
}

/**
 * redeemIn against a SharedRead, without I/O: the key's prior answer, or a spend from the pool as
 * the redemptions before it left it, kept for flushPlanned. A refusal throws before it changes
 * anything. Null when the spend needs lots the pool did not read: it then runs as redeemIn.
 */
function planInBatch(call: Call, shared: SharedRead, member: MemberRead): Outcome | null {
  const { req, hash } = call;
  const prior = shared.priors.get(req.idempotency_key);
  if (prior)
    return { http_status: 200, body: { ...priorAnswer(prior, req.idempotency_key, hash), replayed: true } };
  const spend = buildSpend(
    call,
    {
      pool: member.pool,
      accounts: member.accounts,
      now: shared.now,
      entry_id: shared.ids.entries[shared.taken]!,
    },
    null,
  );
  if (!spend) {
    // It runs as redeemIn, whose spend this pool will not show: the member's later redemptions
    // in the batch run that way too.
    shared.members.delete(req.member_id);
    return null;
  }
  shared.taken += 1;
  member.pool = poolAfter(member.pool, spend.moves);
  member.accounts = accountsAfter(req.member_id, member.accounts, spend.postings);
  shared.pending.push({ spend, key: req.idempotency_key, hash });
  return { http_status: 201, body: spend.body };
}

/**
 * Writes the planned spends kept so far, with one statement per table for all of them. Their
 * keys were free when read under the lock and are claimed here with their answers; a concurrent
 * claim makes the insert fail, and the shared transaction with it (each redemption then runs
 * alone and answers as it should).
 */
async function flushPlanned(trx: Trx, shared: SharedRead): Promise<void> {
  const pending = shared.pending.splice(0);
  if (pending.length === 0) return;
  await deferWrite(
    trx,
    claimWithAnswersQuery(
      trx,
      'redemption',
      pending.map((p) => ({
        key: p.key,
        hash: p.hash,
        status: 201,
        response: p.spend.body,
        at: p.spend.entry.at,
      })),
    ),
  );
  await writeSpends(
    trx,
    pending.map((p) => p.spend),
  );
}

export type { RedemptionView };
