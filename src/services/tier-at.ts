import { sql, type Kysely } from 'kysely';
import type { Group } from '../domain/config/group.ts';
import { baseTier } from '../domain/tiers.ts';
import type { DB } from '../store/schema.ts';

// The tier a member held in each program at a past instant, from tier history. The balances view
// and the tiers view at as_of both answer with it, so they cannot disagree about the tier then.
// The enrollment row only says what the tier is now; tier history says how it got there.
//
// Booking time, like the rest of an as_of read: a change counts at `at` once it is in force
// (from_at <= at) and was recorded by then (recorded_at <= at), so a change booked after `at` for
// an earlier instant is not in the answer.

/** The change a program's answer rests on: the latest in force at `at`, else its latest one. */
export interface TierChange {
  readonly tier: string | null;
  readonly from_at: Date;
  /** false: the program has history, but none of it is in force at `at`. */
  readonly in_force: boolean;
}

/**
 * Per program: the tier of the latest change in force and recorded by `at`, and whether any change
 * exists. Takes an executor (the database or a transaction) so a caller reading inside a
 * transaction reads it with the rest of its answer.
 */
export async function tiersAsOf(
  db: Kysely<DB>,
  member_id: string,
  at: Date,
): Promise<Map<string, TierChange>> {
  const rows = await sql<{ program_id: string; tier: string | null; from_at: Date; in_force: boolean }>`
    select distinct on (program_id) program_id, tier, from_at, (from_at <= ${at} and recorded_at <= ${at}) as in_force
    from tier_history where member_id = ${member_id}
    order by program_id, (from_at <= ${at} and recorded_at <= ${at}) desc, from_at desc, id desc`.execute(db);
  return new Map(
    rows.rows.map((r) => [
      r.program_id,
      { tier: r.tier, from_at: new Date(r.from_at), in_force: r.in_force },
    ]),
  );
}

// With no change in force at `at`, the member held the tier they were enrolled with: the current
// one when it never changed, else the program's base tier (enrollment sets it and writes no history).
// null means the base tier too: callers fall back to baseTier(program.tiers).
export function tierThen(
  group: Group,
  program_id: string,
  current: string | null,
  tiers: ReadonlyMap<string, TierChange>,
): string | null {
  const h = tiers.get(program_id);
  if (!h) return current;
  if (h.in_force) return h.tier;
  return baseTier(group.programs.get(program_id)?.tiers ?? []) ?? current;
}

// Since when the tier of tierThen was held: the from_at of the change in force; with none, the tier
// enrolled with, which the enrollment row reports (unchanged, its own tier_since) and which, once
// it has changed, was the base tier, held since enrollment and so with no tier_since, as the
// current view reports a member who never left the base tier.
export function tierSinceThen(
  program_id: string,
  current_since: Date | null,
  tiers: ReadonlyMap<string, TierChange>,
): Date | null {
  const h = tiers.get(program_id);
  if (!h) return current_since;
  return h.in_force ? h.from_at : null;
}
