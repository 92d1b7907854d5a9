import { newId } from './ids.ts';
import type { CompiledProgram, Group } from '../domain/config/group.ts';
import { computeExpiresAt } from '../domain/expiry.ts';
import { allocateFefo } from '../domain/lots/fefo.ts';
import { isWholePt4, pt4ToJson, pt4ToString, type Pt4 } from '../domain/points.ts';
import { AppError } from '../errors.ts';
import { memberAccount, systemAccount } from '../ledger/accounts.ts';
import { payDebtFromNewLots } from '../ledger/debt-paydown.ts';
import type { EntryInput, LotMove, NewLot } from '../ledger/entry.ts';
import { postEntry, type Trx } from '../ledger/post.ts';
import { memberState, openLots } from '../ledger/read.ts';
import { requireGroup } from './config.ts';
import type { Actor, Ctx } from './context.ts';
import { resolvePaidDebts } from './events/accrue.ts';
import { claimIdempotencyKey, requestHash, storeOutcome } from './idempotency.ts';
import { lockExistingMembers } from './members.ts';
import { remainingBalances } from './redemptions/spendable.ts';
import { spendable } from './redemptions/spend-plan.ts';
import { tierAt } from './tiers.ts';
import { inTransaction } from './transaction.ts';

// POST /v1/adjustments (admin): a manual credit or debit, through the ledger like everything
// else. A credit is a new lot (issued by the given brand, or the program's own; expiring by the
// program's policy) posted member_available +x / adjustment −x; a debit takes lots earliest
// expiry first and posts member_available −x / adjustment +x, and fails whole with
// INSUFFICIENT_POINTS. The reason code and note travel on the entry, so the statement and the
// activity show them; the route's audit action records who did it.

export const REASON_CODES = ['goodwill', 'service_recovery', 'correction', 'fraud', 'migration'] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

export interface AdjustmentRequest {
  readonly member_id: string;
  readonly program_id: string;
  /** Signed: positive credits, negative debits. Never zero. */
  readonly points_pt4: Pt4;
  readonly reason_code: ReasonCode;
  readonly note: string;
  readonly idempotency_key: string;
  readonly issuing_brand_id?: string | undefined;
}

export interface Outcome {
  readonly http_status: number;
  readonly body: Record<string, unknown>;
}

export async function createAdjustment(
  ctx: Ctx,
  req: AdjustmentRequest,
  raw: unknown,
  actor: Actor,
): Promise<Outcome> {
  const group = await requireGroup(ctx);
  const program = group.programs.get(req.program_id);
  if (!program)
    throw new AppError('UNKNOWN_PROGRAM', `Program ${req.program_id} is not in the configuration`, {
      field: 'program_id',
    });
  if (req.points_pt4 === 0n)
    throw new AppError('INVALID_AMOUNT', 'points must not be zero', { field: 'points' });
  if (program.rounding !== 'accumulate' && !isWholePt4(req.points_pt4))
    throw new AppError('INVALID_AMOUNT', `${program.id} points are whole points`, { field: 'points' });
  const issuer = req.points_pt4 > 0n ? issuingBrand(group, program, req.issuing_brand_id) : null;
  const hash = requestHash(raw);
  return inTransaction(ctx.db, async (trx) => {
    const now = ctx.clock.now();
    const replay = await claimIdempotencyKey(trx, 'adjustment', req.idempotency_key, hash, now);
    if (replay) return replay;
    await lockExistingMembers(trx, [req.member_id]);
    const id = newId('adj');
    const base: Omit<EntryInput, 'postings'> = {
      kind: 'adjustment',
      member_id: req.member_id,
      at: now,
      request_id: actor.request_id,
      key_id: actor.key_id,
      ref_type: 'adjustment',
      ref_id: id,
      detail: {
        adjustment_id: id,
        reason_code: req.reason_code,
        note: req.note,
        points_pt4: req.points_pt4.toString(),
        issuing_brand_id: issuer,
        idempotency_key: req.idempotency_key,
      },
    };
    const effect =
      issuer !== null
        ? await credit(trx, group, program, req, issuer, base, now)
        : await debit(trx, group, program, req, base, now);
    const body = {
      adjustment_id: id,
      member_id: req.member_id,
      program_id: program.id,
      points: pt4ToJson(req.points_pt4),
      direction: req.points_pt4 > 0n ? 'credit' : 'debit',
      reason_code: req.reason_code,
      note: req.note,
      issuing_brand_id: issuer,
      created_at: now.toISOString(),
      ...effect,
      balances: await remainingBalances(trx, req.member_id),
    };
    await storeOutcome(trx, 'adjustment', req.idempotency_key, 201, body);
    return { http_status: 201, body };
  });
}

function issuingBrand(group: Group, program: CompiledProgram, given: string | undefined): string {
  if (given !== undefined) {
    if (!group.brands.has(given))
      throw new AppError('UNKNOWN_BRAND', `Brand ${given} is not in the configuration`, {
        field: 'issuing_brand_id',
      });
    return given;
  }
  if (program.brand_id === null) {
    throw new AppError(
      'INVALID_REQUEST',
      `${program.id} is the group program: a credit names the brand that issues it (issuing_brand_id)`,
      { field: 'issuing_brand_id' },
    );
  }
  return program.brand_id;
}

async function credit(
  trx: Trx,
  group: Group,
  program: CompiledProgram,
  req: AdjustmentRequest,
  issuer: string,
  base: Omit<EntryInput, 'postings'>,
  now: Date,
) {
  // Enrolled on the credit, without counting it as member activity (it is not the member's doing).
  await trx
    .insertInto('enrollments')
    .values({
      member_id: req.member_id,
      program_id: program.id,
      enrolled_at: now,
      tier: null,
      tier_since: null,
      last_activity_at: now,
    })
    .onConflict((oc) => oc.columns(['member_id', 'program_id']).doNothing())
    .execute();
  const points = req.points_pt4;
  const tier = await tierAt(trx, req.member_id, program.id, now);
  const tierDays = program.tiers.find((t) => t.id === tier)?.expiry_days;
  const expiresMs = computeExpiresAt(
    program.expiry,
    now.getTime(),
    tierDays !== undefined ? { tier_expiry_days: tierDays } : {},
  );
  // A recorded reversal shortfall is paid down first (ledger/debt-paydown.ts).
  const debt = -((await memberState(trx, req.member_id)).get(program.id)?.floor_pt4 ?? 0n);
  const credit: NewLot = {
    program_id: program.id,
    member_id: req.member_id,
    issuing_brand_id: issuer,
    points_pt4: points,
    remaining_pt4: points,
    state: 'available',
    awarded_at: now,
    available_at: now,
    expires_at: expiresMs === null ? null : new Date(expiresMs),
    source_event_id: null,
  };
  const paid = payDebtFromNewLots([credit], req.member_id, program.id, debt);
  const { floors } = paid;
  const posted = await postEntry(trx, {
    ...base,
    postings: [
      { account: memberAccount(program.id, req.member_id, 'member_available'), amount_pt4: points },
      { account: systemAccount(program.id, 'adjustment', group.id), amount_pt4: -points },
    ],
    new_lots: paid.lots,
    floor_moves: floors,
  });
  await resolvePaidDebts(trx, req.member_id, floors, now);
  return {
    entry_id: String(posted.entry_id),
    lot: {
      lot_id: String(posted.lot_ids[0]),
      points: pt4ToJson(points),
      debt_paid: pt4ToJson(paid.paid_pt4),
      expires_at: expiresMs === null ? null : new Date(expiresMs).toISOString(),
    },
  };
}

async function debit(
  trx: Trx,
  group: Group,
  program: CompiledProgram,
  req: AdjustmentRequest,
  base: Omit<EntryInput, 'postings'>,
  now: Date,
) {
  const want = -req.points_pt4;
  const lots = spendable(await openLots(trx, req.member_id, [program.id]), now);
  const plan = allocateFefo(lots, want);
  if (plan.shortfall_pt4 > 0n) {
    const available = lots.reduce((s, l) => s + l.spendable_pt4, 0n);
    throw new AppError(
      'INSUFFICIENT_POINTS',
      `Not enough points in ${program.id}: ${pt4ToString(available)} available`,
      { available: pt4ToJson(available), requested: pt4ToJson(want), program_id: program.id },
    );
  }
  const byId = new Map(lots.map((l) => [l.id, l]));
  const moves: LotMove[] = plan.allocations.map((a) => {
    const lot = byId.get(a.lot_id)!;
    return {
      lot_id: BigInt(a.lot_id),
      program_id: program.id,
      member_id: req.member_id,
      issuing_brand_id: lot.issuing_brand_id,
      kind: 'adjust',
      points_pt4: a.points_pt4,
      remaining_delta_pt4: -a.points_pt4,
      held_delta_pt4: 0n,
      state_from: 'available',
    };
  });
  const posted = await postEntry(trx, {
    ...base,
    postings: [
      { account: memberAccount(program.id, req.member_id, 'member_available'), amount_pt4: -want },
      { account: systemAccount(program.id, 'adjustment', group.id), amount_pt4: want },
    ],
    lot_moves: moves,
  });
  return {
    entry_id: String(posted.entry_id),
    allocations: moves.map((m) => ({
      lot_id: String(m.lot_id),
      issuing_brand_id: m.issuing_brand_id,
      points: pt4ToJson(m.points_pt4),
    })),
  };
}

/** GET /v1/adjustments/{id}: the adjustment as recorded on its entry. */
export async function getAdjustment(ctx: Ctx, id: string): Promise<Record<string, unknown>> {
  const e = await ctx.db
    .selectFrom('entries')
    .select(['id', 'member_id', 'at', 'key_id', 'request_id', 'detail'])
    .where('ref_type', '=', 'adjustment')
    .where('ref_id', '=', id)
    .where('kind', '=', 'adjustment')
    .executeTakeFirst();
  if (!e) throw new AppError('ADJUSTMENT_NOT_FOUND', undefined, { adjustment_id: id });
  const postings = await ctx.db
    .selectFrom('postings as p')
    .innerJoin('accounts as a', 'a.id', 'p.account_id')
    .select(['p.program_id', 'p.amount_pt4'])
    .where('p.entry_id', '=', e.id)
    .where('a.kind', 'like', 'member_%')
    .execute();
  const d = e.detail;
  return {
    adjustment_id: id,
    member_id: e.member_id,
    program_id: postings[0]?.program_id ?? null,
    points: pt4ToJson(postings.reduce((s, p) => s + p.amount_pt4, 0n)),
    reason_code: d.reason_code,
    note: d.note,
    issuing_brand_id: d.issuing_brand_id ?? null,
    created_at: e.at.toISOString(),
    entry_id: String(e.id),
    key_id: e.key_id,
    request_id: e.request_id,
  };
}
