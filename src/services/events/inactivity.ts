import type { CompiledProgram } from '../../domain/config/group.ts';
import { DAY_MS } from '../../domain/expiry.ts';
import { sql } from 'kysely';
import type { Trx } from '../../ledger/post.ts';
import { deferWrite } from '../../store/write-behind.ts';

/**
 * Under an `inactivity` policy every open lot of the member in the program expires `days` after
 * the member's last earning or spending, so activity pushes all of them out (never in). A lot
 * already past its expiry stays expired: activity does not revive it, neither at the activity's
 * own time nor at `now` (a late event's activity is in the past, and a lot may have expired
 * between it and its arrival; whether the expire job swept it yet must not matter).
 */
export async function extendInactivityExpiry(
  trx: Trx,
  member_id: string,
  program: CompiledProgram,
  activity_at: Date,
  now: Date,
): Promise<void> {
  if (program.expiry.kind !== 'inactivity') return;
  const until = new Date(activity_at.getTime() + program.expiry.days * DAY_MS);
  const extend = trx
    .updateTable('lots')
    .set({ expires_at: until })
    .where('member_id', '=', member_id)
    .where('program_id', '=', program.id)
    .where('open', '=', true)
    .where((eb) =>
      eb.or([
        eb('expires_at', 'is', null),
        eb.and([
          eb('expires_at', '>', activity_at),
          eb('expires_at', '>', now),
          eb('expires_at', '<', until),
        ]),
      ]),
    );
  await deferWrite(trx, extend);
}

/**
 * The member's current deadline per program: the latest expiry among their open lots there that
 * have not expired by `now`. Under an inactivity policy a new lot expires no earlier than this
 * (buildAccrual): a late event (dated before the member's latest activity) would otherwise give
 * its lot an expiry of its own, earlier than the member's other lots, although the member was
 * active since. Lots already past their expiry stay out: activity never revives them.
 */
export const inactivityDeadlineQuery = (
  db: Pick<Trx, 'selectFrom'>,
  member_id: string,
  program_ids: readonly string[],
  now: Date,
) =>
  db
    .selectFrom('lots')
    .select(['program_id', sql<Date>`max(expires_at)`.as('deadline')])
    .where('member_id', '=', member_id)
    .where('program_id', 'in', [...program_ids])
    .where('open', '=', true)
    .where('expires_at', '>', now)
    .groupBy('program_id');
