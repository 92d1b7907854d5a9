import { sql, type Kysely } from 'kysely';

// The current balances read (src/services/balances-current.ts) as one function, so each read is
// one statement that is trivial to plan. The drivers send every statement unnamed, so PostgreSQL
// plans it on every execution; for this query (four subqueries over accounts, enrollments and
// lots) planning cost more than executing it (measured on PostgreSQL 15, 16 clients: ~2,200
// statements/s as plain SQL against ~4,200/s through this function). PL/pgSQL keeps the plan of
// its query per connection; force_generic_plan keeps it from going back to planning each call
// (a custom plan per member) when the members' lot counts are skewed.
//
// It returns no row when the member does not exist, else one row of json columns:
// - accounts: [program_id, kind, balance_pt4 as decimal text] for the member's accounts;
// - enrollments: [program_id, tier];
// - expiring: program_id → [{points, expires_at}], the open lots expiring after p_at and within
//   their program's window (p_windows: [{program_id, window_seconds}], the programs in force), by
//   expiry then id;
// - pending: program_id → [{points, available_at}], the first 100 pending lots by availability then id.
// Points are `remaining_pt4 * 0.0001`, an exact numeric that JSON.parse turns into the same number
// as pt4ToJson. Instants are ISO-8601 UTC with milliseconds, as Date#toISOString writes them; MS
// truncates microseconds as the drivers' Date parsing does. A change to the answer's shape is a
// new migration that replaces this function.

const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

export async function up(db: Kysely<unknown>): Promise<void> {
  // A member's pending lots in the order the read lists them, without walking all its open lots
  // or every pending lot of every member (lots_pending is by available_at alone).
  await sql`create index lots_member_pending on lots (member_id, available_at, id)
    where state = 'pending' and remaining_pt4 > 0`.execute(db);
  await sql
    .raw(
      `create function pointpool_current_balances(p_member_id text, p_at timestamptz, p_windows json)
  returns table (accounts json, enrollments json, expiring json, pending json)
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
         json_agg(json_build_object('points', l.remaining_pt4 * 0.0001,
                                    'expires_at', to_char(l.expires_at at time zone 'UTC', ${ISO}))
                  order by l.expires_at, l.id) as lots
       from lots l
       join json_to_recordset(p_windows) as w(program_id text, window_seconds int8)
         on w.program_id = l.program_id
       where l.member_id = m.id and l.remaining_pt4 > 0 and l.expires_at > p_at
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
             where l.member_id = m.id and l.state = 'pending' and l.remaining_pt4 > 0) q
       where q.n <= 100
       group by q.program_id) p)
  from members m where m.id = p_member_id;
end $$`,
    )
    .execute(db);
}
