// Bulk seeding straight into the ledger tables with generate_series, for volumes the HTTP API
// would take too long to build (a million lots). Everything a seed writes keeps the ledger
// consistent, so GET /v1/ledger/verify stays ok:
// - one entry per seed, whose postings balance per program: +balance on each member's available
//   account, −total on the issuing brand's issuance account (a system account: no running balance);
// - member accounts' balance_pt4 equal their postings and the remaining of their lots;
// - lots have no allocations, so remaining = points.
// Runs inside the server process (bench/server.ts), because PGlite has one connection per data dir.

import { sql, type Kysely } from 'kysely';
import type { DB } from '../src/store/schema.ts';

const PT4 = 10_000n; // points are stored in 1/10,000 units

export interface LotSeed {
  /** Member id prefix; ids are prefix + 7-digit zero-padded number, so text order = number order. */
  readonly prefix: string;
  readonly members: number;
  /** Per program: the lots every member gets in it. */
  readonly programs: readonly { program_id: string; brand_id: string }[];
  readonly lots_per_program: number;
  readonly points_per_lot: number;
  readonly awarded_at: string;
  /** Lot k (1-based) of program index p expires at first_expiry + (k × programs + p) minutes. */
  readonly first_expiry: string;
  readonly label: string;
}

export interface SeedResult {
  readonly entry_id: string;
  readonly members: number;
  readonly lots: number;
  readonly seconds: number;
}

/** Members per statement: bounds each INSERT … SELECT to ~100k lot rows. */
const memberChunk = (lotsPerMember: number) => Math.max(1, Math.floor(100_000 / lotsPerMember));

export async function seedLots(db: Kysely<DB>, s: LotSeed): Promise<SeedResult> {
  const started = performance.now();
  const at = new Date(s.awarded_at);
  const first = new Date(s.first_expiry);
  const lotPt4 = BigInt(s.points_per_lot) * PT4;
  const memberPt4 = lotPt4 * BigInt(s.lots_per_program);
  const nPrograms = s.programs.length;
  const id = (g: string) => sql`${s.prefix} || lpad(${sql.ref(g)}::text, 7, '0')`;
  const entry_id = await db.transaction().execute(async (trx) => {
    const entry = await sql<{
      id: bigint;
    }>`insert into entries (kind, member_id, at, ref_type, ref_id, detail)
      values ('bench_seed', null, ${at}, 'bench', ${s.label}, ${JSON.stringify({ members: s.members, lots_per_program: s.lots_per_program })}::jsonb)
      returning id`.execute(trx);
    const eid = entry.rows[0]!.id;
    const step = memberChunk(s.lots_per_program * nPrograms);
    for (let lo = 1; lo <= s.members; lo += step) {
      const hi = Math.min(s.members, lo + step - 1);
      const range = sql`generate_series(${lo}::int, ${hi}::int)`;
      await sql`insert into members (id, created_at, referred_by) select ${id('g')}, ${at}, null from ${range} g`.execute(
        trx,
      );
      for (const [p, prog] of s.programs.entries()) {
        await sql`insert into enrollments (member_id, program_id, enrolled_at, tier, tier_since, last_activity_at)
          select ${id('g')}, ${prog.program_id}, ${at}, null, null, ${at} from ${range} g`.execute(trx);
        await sql`insert into accounts (program_id, kind, owner_id, balance_pt4, floor_pt4)
          select ${prog.program_id}, 'member_available', ${id('g')}, ${memberPt4}::int8, 0 from ${range} g`.execute(
          trx,
        );
        // The members' credits and the brand's debit in one statement: the database checks
        // each postings statement's entries balance (migration 011).
        const res = await sql`insert into postings (entry_id, account_id, program_id, amount_pt4, at)
          select ${eid}::int8, a.id, a.program_id, a.balance_pt4, ${at}::timestamptz from accounts a
          where a.kind = 'member_available' and a.program_id = ${prog.program_id}
            and a.owner_id between ${`${s.prefix}${String(lo).padStart(7, '0')}`} and ${`${s.prefix}${String(hi).padStart(7, '0')}`}
          union all
          select ${eid}::int8, id, program_id, ${-memberPt4 * BigInt(hi - lo + 1)}::int8, ${at}::timestamptz from accounts
          where program_id = ${prog.program_id} and kind = 'issuance' and owner_id = ${prog.brand_id}`.execute(
          trx,
        );
        if (res.numAffectedRows !== BigInt(hi - lo + 2))
          throw new Error(
            `seed: no issuance account for ${prog.program_id}/${prog.brand_id} (apply the config first)`,
          );
        await sql`insert into lots (program_id, member_id, issuing_brand_id, points_pt4, remaining_pt4, held_pt4, state,
            awarded_at, available_at, expires_at, source_entry_id, source_event_id)
          select ${prog.program_id}, ${id('m')}, ${prog.brand_id}, ${lotPt4}::int8, ${lotPt4}::int8, 0, 'available',
            ${at}, ${at}, ${first}::timestamptz + ((k * ${nPrograms}::int + ${p}::int) * interval '1 minute'), ${eid}, null
          from ${range} m cross join generate_series(1, ${s.lots_per_program}::int) k`.execute(trx);
      }
    }
    return eid;
  });
  // Fresh statistics, as a long-running database would have: the jobs' plans depend on them.
  for (const t of ['members', 'enrollments', 'accounts', 'postings', 'lots'])
    await sql`analyze ${sql.table(t)}`.execute(db);
  return {
    entry_id: entry_id.toString(),
    members: s.members,
    lots: s.members * s.lots_per_program * nPrograms,
    seconds: (performance.now() - started) / 1000,
  };
}
