import { sql } from 'kysely';
import { baseTier } from '../domain/tiers.ts';
import { AppError } from '../errors.ts';
import type { Trx } from '../ledger/post.ts';
import { deferWrite } from '../store/write-behind.ts';
import type { Ctx } from './context.ts';

// One member profile across the group, enrolled per program on first activity there.

/** Creates the member on first sight (a deferred write: it travels with the lock that follows). */
export async function ensureMember(trx: Trx, member_id: string, at: Date): Promise<void> {
  await deferWrite(
    trx,
    trx
      .insertInto('members')
      .values({ id: member_id, created_at: at, referred_by: null })
      .onConflict((oc) => oc.column('id').doNothing()),
  );
}

/** Enrolls the member in each program not yet enrolled in, and marks activity in all of them. */
export async function enroll(
  trx: Trx,
  member_id: string,
  program_ids: readonly string[],
  at: Date,
): Promise<void> {
  if (program_ids.length === 0) return;
  const upsert = trx
    .insertInto('enrollments')
    .values(
      [...new Set(program_ids)].sort().map((program_id) => ({
        member_id,
        program_id,
        enrolled_at: at,
        tier: null,
        tier_since: null,
        last_activity_at: at,
      })),
    )
    .onConflict((oc) =>
      oc.columns(['member_id', 'program_id']).doUpdateSet({
        last_activity_at: sql`greatest(enrollments.last_activity_at, excluded.last_activity_at)`,
      }),
    );
  await deferWrite(trx, upsert);
}

/**
 * Locks the members' rows, in id order, for the rest of the transaction. Every command that moves
 * a member's points takes this lock first, so allocations read from the member's lots cannot be
 * invalidated by a concurrent command, and two commands over several members (a transfer) never
 * wait on each other in opposite orders.
 */
export async function lockMembers(trx: Trx, member_ids: readonly string[]): Promise<Set<string>> {
  if (member_ids.length === 0) return new Set();
  const rows = await lockQuery(trx, member_ids).execute();
  return new Set(rows.map((r) => r.id));
}

/** The statement lockMembers sends (member_ids not empty), to send with the reads that follow it:
 * each later statement of the same round trip takes its snapshot after the lock is granted. */
export function lockQuery(trx: Trx, member_ids: readonly string[]) {
  return trx
    .selectFrom('members')
    .select('id')
    .where('id', 'in', [...new Set(member_ids)].sort())
    .orderBy('id')
    .forUpdate();
}

/** Locks members that must already exist (one statement): MEMBER_NOT_FOUND names the first missing. */
export async function lockExistingMembers(trx: Trx, member_ids: readonly string[]): Promise<void> {
  const locked = await lockMembers(trx, member_ids);
  const missing = member_ids.find((id) => !locked.has(id));
  if (missing !== undefined)
    throw new AppError('MEMBER_NOT_FOUND', `No member ${missing}`, { member_id: missing });
}

export interface MemberView {
  member_id: string;
  created_at: string;
  referred_by: string | null;
  enrollments: { program_id: string; enrolled_at: string; tier: string | null; last_activity_at: string }[];
}

export async function getMember(ctx: Ctx, member_id: string): Promise<MemberView> {
  const m = await ctx.db.selectFrom('members').selectAll().where('id', '=', member_id).executeTakeFirst();
  if (!m) throw new AppError('MEMBER_NOT_FOUND', undefined, { member_id });
  const enr = await ctx.db
    .selectFrom('enrollments')
    .selectAll()
    .where('member_id', '=', member_id)
    .orderBy('program_id')
    .execute();
  const group = await ctx.groups.current();
  return {
    member_id: m.id,
    created_at: m.created_at.toISOString(),
    referred_by: m.referred_by,
    enrollments: enr.map((e) => ({
      program_id: e.program_id,
      enrolled_at: e.enrolled_at.toISOString(),
      // Enrolled without a purchase (a transfer, an adjustment, a referral bonus): the base tier.
      tier: e.tier ?? baseTier(group?.programs.get(e.program_id)?.tiers ?? []),
      last_activity_at: e.last_activity_at.toISOString(),
    })),
  };
}
