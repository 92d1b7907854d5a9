import { sql, type Kysely } from 'kysely';

// The current balances read (migration 006, with 010's `l.open`) again, answering by redemption's
// rule for expiry. Until the expire job has run, a lot past its expires_at still counts in the
// member's available (or pending) account, yet a redemption at that instant can no longer spend it
// (services/redemptions/spend-read.ts: expires_at, to the millisecond, must be after the instant).
// So the read now also returns, per program and lot state, the points the expire job will take
// from lots already expired at p_at (remaining − held, as expire.ts takes them), which the answer
// leaves out of available/pending and shows as `expired_not_swept`; and `expiring` lists only what
// the member can still spend and so lose: the unheld points of available lots not yet expired.
//
// New column `expired`: [[program_id, state, points_pt4 as decimal text]]. The return type
// changes, so the function is dropped and created again (inside this migration's transaction, so
// no read sees it missing).

const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`drop function pointpool_current_balances(text, timestamptz, json)`.execute(db);
  await sql
    .raw(
      `create function pointpool_current_balances(p_member_id text, p_at timestamptz, p_windows json)
  returns table (accounts json, enrollments json, expiring json, pending json, expired json)
  language plpgsql stable set plan_cache_mode = force_generic_plan as $$
begin
  return query
  select
    (select json_agg(json_build_array(a.program_id, a.kind, a.balance_pt4::text))
       from accounts a where a.owner_id = m.id and a.kind like 'member_%'),
    (select json_agg(json_build_array(e.program_id, e.tier))
       from enrollments e where e.member_id = m.id),
    (select json_object_agg(x.program_id, x.lots) from (
       select l.program_id,
         json_agg(json_build_object('points', (l.remaining_pt4 - l.held_pt4) * 0.0001,
                                    'expires_at', to_char(l.expires_at at time zone 'UTC', ${ISO}))
                  order by l.expires_at, l.id) as lots
       from lots l
       join json_to_recordset(p_windows) as w(program_id text, window_seconds int8)
         on w.program_id = l.program_id
       where l.member_id = m.id and l.open and l.state = 'available' and l.remaining_pt4 > l.held_pt4
         and date_trunc('milliseconds', l.expires_at) > p_at
         and l.expires_at <= p_at + make_interval(secs => w.window_seconds)
       group by l.program_id) x),
    (select json_object_agg(p.program_id, p.lots) from (
       select q.program_id,
         json_agg(json_build_object('points', q.remaining_pt4 * 0.0001,
                                    'available_at', to_char(q.available_at at time zone 'UTC', ${ISO}))
                  order by q.available_at, q.id) as lots
       from (select l.program_id, l.remaining_pt4, l.available_at, l.id,
               row_number() over (partition by l.program_id order by l.available_at, l.id) as n
             from lots l
             where l.member_id = m.id and l.state = 'pending' and l.open) q
       where q.n <= 100
       group by q.program_id) p),
    (select json_agg(json_build_array(d.program_id, d.state, d.points_pt4::text)) from (
       select l.program_id, l.state, sum(l.remaining_pt4 - l.held_pt4) as points_pt4
       from lots l
       where l.member_id = m.id and l.open and l.remaining_pt4 > l.held_pt4
         and date_trunc('milliseconds', l.expires_at) <= p_at
       group by l.program_id, l.state) d)
  from members m where m.id = p_member_id;
end $$`,
    )
    .execute(db);
}
