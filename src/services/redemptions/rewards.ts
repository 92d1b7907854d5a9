import type { Kysely } from 'kysely';
import type { Group } from '../../domain/config/group.ts';
import { isWholePt4, pt4FromJson, pt4ToJson, type Pt4 } from '../../domain/points.ts';
import { AppError } from '../../errors.ts';
import type { Trx } from '../../ledger/post.ts';
import type { DB } from '../../store/schema.ts';

// The rewards catalog: a brand's rewards priced in one program's points, with optional stock and
// validity window. Redeeming one takes its stock in the redemption's own transaction by a
// conditional update, so stock never goes below zero and a rolled-back redemption returns it.

export interface RewardInput {
  id?: string | undefined;
  brand_id: string;
  program_id: string;
  name: string;
  points_cost: number;
  stock?: number | null | undefined;
  valid_from?: string | null | undefined;
  valid_to?: string | null | undefined;
  active?: boolean | undefined;
}

export function rewardView(r: {
  id: string;
  brand_id: string;
  program_id: string;
  name: string;
  points_cost_pt4: bigint;
  stock: number | null;
  valid_from: Date | null;
  valid_to: Date | null;
  active: boolean;
  created_at: Date;
  updated_at: Date;
}) {
  return {
    id: r.id,
    brand_id: r.brand_id,
    program_id: r.program_id,
    name: r.name,
    points_cost: pt4ToJson(r.points_cost_pt4),
    stock: r.stock,
    valid_from: r.valid_from?.toISOString() ?? null,
    valid_to: r.valid_to?.toISOString() ?? null,
    active: r.active,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

/** A price in the program's points: positive, and whole unless the program accumulates fractions
 * (a fractional price in a whole-point program could never be paid). */
function cost(points: number, program_id: string, group: Group | null): Pt4 {
  const p = pt4FromJson(points);
  if (p === null || p <= 0n)
    throw new AppError('INVALID_AMOUNT', 'points_cost must be a positive number with at most 4 decimals', {
      field: 'points_cost',
    });
  const program = group?.programs.get(program_id);
  if (program && program.rounding !== 'accumulate' && !isWholePt4(p))
    throw new AppError('INVALID_AMOUNT', `${program_id} points are whole points`, { field: 'points_cost' });
  return p;
}

function checkWindow(valid_from: number | null, valid_to: number | null): void {
  if (valid_from !== null && valid_to !== null && valid_from >= valid_to)
    throw new AppError('INVALID_REQUEST', 'valid_from must be before valid_to', { field: 'valid_to' });
}

const ms = (v: string | Date | null | undefined): number | null =>
  v === null || v === undefined ? null : new Date(v).getTime();

export async function createReward(
  db: Kysely<DB>,
  group: Group | null,
  input: RewardInput,
  id: string,
  now: Date,
) {
  checkWindow(ms(input.valid_from), ms(input.valid_to));
  const row = await db
    .insertInto('rewards')
    .values({
      id,
      brand_id: input.brand_id,
      program_id: input.program_id,
      name: input.name,
      points_cost_pt4: cost(input.points_cost, input.program_id, group),
      stock: input.stock ?? null,
      valid_from: input.valid_from ?? null,
      valid_to: input.valid_to ?? null,
      active: input.active ?? true,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!row) throw new AppError('CONCURRENT_UPDATE', `Reward ${id} already exists`, { field: 'id' });
  return rewardView(row);
}

/** A change is checked against the reward it makes (the stored fields it leaves as they are). */
export async function updateReward(
  db: Kysely<DB>,
  group: Group | null,
  id: string,
  patch: Partial<RewardInput>,
  now: Date,
) {
  return db.transaction().execute(async (trx) => {
    const stored = await trx
      .selectFrom('rewards')
      .selectAll()
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst();
    if (!stored) throw new AppError('REWARD_NOT_FOUND', undefined, { reward_id: id });
    checkWindow(
      patch.valid_from !== undefined ? ms(patch.valid_from) : ms(stored.valid_from),
      patch.valid_to !== undefined ? ms(patch.valid_to) : ms(stored.valid_to),
    );
    const row = await trx
      .updateTable('rewards')
      .set({
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.points_cost !== undefined
          ? { points_cost_pt4: cost(patch.points_cost, stored.program_id, group) }
          : {}),
        ...(patch.stock !== undefined ? { stock: patch.stock } : {}),
        ...(patch.valid_from !== undefined ? { valid_from: patch.valid_from } : {}),
        ...(patch.valid_to !== undefined ? { valid_to: patch.valid_to } : {}),
        ...(patch.active !== undefined ? { active: patch.active } : {}),
        updated_at: now,
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    return rewardView(row);
  });
}

export async function getReward(db: Kysely<DB>, id: string) {
  const row = await db.selectFrom('rewards').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new AppError('REWARD_NOT_FOUND', undefined, { reward_id: id });
  return rewardView(row);
}

export async function listRewards(
  db: Kysely<DB>,
  f: { brand_id?: string | undefined; active?: boolean | undefined },
) {
  let q = db.selectFrom('rewards').selectAll().orderBy('id').limit(1000);
  if (f.brand_id) q = q.where('brand_id', '=', f.brand_id);
  if (f.active !== undefined) q = q.where('active', '=', f.active);
  return (await q.execute()).map(rewardView);
}

export async function takeRewardStock(
  trx: Trx,
  reward_id: string,
  quantity: number,
  brand_id: string,
  program_id: string,
  group_redemption: boolean,
  now: Date,
): Promise<{ reward_id: string; name: string; quantity: number; points_pt4: Pt4 }> {
  const r = await trx.selectFrom('rewards').selectAll().where('id', '=', reward_id).executeTakeFirst();
  if (!r) throw new AppError('REWARD_NOT_FOUND', undefined, { reward_id });
  const inWindow =
    (!r.valid_from || r.valid_from.getTime() <= now.getTime()) &&
    (!r.valid_to || now.getTime() < r.valid_to.getTime());
  if (!r.active || !inWindow)
    throw new AppError('REWARD_UNAVAILABLE', `Reward ${reward_id} is not available now`, { reward_id });
  if (r.brand_id !== brand_id)
    throw new AppError('REWARD_UNAVAILABLE', `Reward ${reward_id} belongs to brand ${r.brand_id}`, {
      reward_id,
    });
  if (r.program_id !== program_id) {
    throw new AppError(
      'REWARD_UNAVAILABLE',
      `Reward ${reward_id} is priced in ${r.program_id}${group_redemption ? '; redeem it with group_redemption: false' : ''}`,
      { reward_id, program_id: r.program_id },
    );
  }
  const res = await trx
    .updateTable('rewards')
    .set((eb) => ({ stock: eb('stock', '-', quantity), updated_at: now }))
    .where('id', '=', reward_id)
    .where('stock', '>=', quantity)
    .executeTakeFirst();
  if (r.stock !== null && res.numUpdatedRows !== 1n)
    throw new AppError('REWARD_SOLD_OUT', `Reward ${reward_id} is sold out`, { reward_id, stock: r.stock });
  return { reward_id, name: r.name, quantity, points_pt4: r.points_cost_pt4 * BigInt(quantity) };
}

/**
 * A reward redemption that did not go through (hold released or timed out, redemption reversed)
 * gives its stock back, in the same transaction. Unlimited stock (null) stays unlimited.
 */
export async function returnRewardStock(
  trx: Trx,
  reward_id: string | null | undefined,
  quantity: number | null | undefined,
  now: Date,
): Promise<void> {
  if (!reward_id) return;
  await trx
    .updateTable('rewards')
    .set((eb) => ({ stock: eb('stock', '+', quantity ?? 1), updated_at: now }))
    .where('id', '=', reward_id)
    .where('stock', 'is not', null)
    .execute();
}
