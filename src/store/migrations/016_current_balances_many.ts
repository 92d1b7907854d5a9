import { sql, type Kysely } from 'kysely';

// The current balances read (migration 013's answer, unchanged) for many members in one call.
// Reads that arrive together were answered by one statement calling pointpool_current_balances
// once per member (services/balances-current.ts), and each call paid for itself: the function
// call, its query's executor started and stopped, its rows copied out. Here the same subqueries
// run once over all the members of the statement, one row per member that exists, numbered by
// its place in the arrays (`i`, from 1). Its plan is generic and kept per connection like 013's,
// and planned with sequential scans and hash or merge joins off (as migrations 008 and 011 do)
// so that a plan made while the tables are small still probes the indexes per member.
//
// Measured (2026-12-02, an AMD EPYC VM, the bench's store after its balance-reads phase, 8
// members per statement, PostgreSQL's CPU from /proc): 0.12–0.19 → 0.07–0.09 ms per read. The
// answers are equal byte for byte.
//
// pointpool_current_balances stays: a server of the previous version, still running while this
// one starts, reads through it.

const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      `create function pointpool_current_balances_many(p_member_ids text[], p_ats timestamptz[], p_windows json)
  returns table (i int4, accounts json, enrollments json, expiring json, pending json, expired json)
  language plpgsql stable
  set plan_cache_mode = force_generic_plan set enable_seqscan = off
  set enable_hashjoin = off set enable_mergejoin = off as $$
begin
  return query
  select
    r.n::int4,
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
         and date_trunc('milliseconds', l.expires_at) > r.at
         and l.expires_at <= r.at + make_interval(secs => w.window_seconds)
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
         and date_trunc('milliseconds', l.expires_at) <= r.at
       group by l.program_id, l.state) d)
  from unnest(p_member_ids, p_ats) with ordinality as r(member_id, at, n)
  join members m on m.id = r.member_id;
end $$`,
    )
    .execute(db);
}
