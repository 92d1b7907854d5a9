// What the two per-lot statements of posting an expiry cost (docs/performance.md, Expiry): the
// lot update and the allocation insert for 2,000 lots, built as the ledger built them before
// (VALUES, one parameter per column per row, sent with bound parameters) and as it builds them
// now (src/ledger/lot-moves.ts: one array parameter per column, unnest, sent as deferred writes
// with the next statement). Each run is rolled back, so every repetition works on the same lots.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test node --import tsx bench/lot-statements.ts
//
// Creates pp_lots_<random> through DATABASE_URL (an admin connection) and drops it at the end.
// Reports wall time, this process's CPU and the PostgreSQL backend's CPU (/proc, Linux).

import { sql, type Kysely, type Transaction } from 'kysely';
import type { LotMove } from '../src/ledger/entry.ts';
import { allocationsStatement, lotMoveUpdates } from '../src/ledger/lot-moves.ts';
import { createService } from '../src/service.ts';
import type { DB } from '../src/store/schema.ts';
import { deferWrite } from '../src/store/write-behind.ts';
import { benchConfigDoc, DEFAULT_PROGRAM } from './config.ts';
import { freshDatabase } from './fresh-database.ts';
import { procCpuSeconds } from './proc.ts';
import { seedLots } from './seed.ts';

const LOTS = 2_000;
const REPS = Number(process.env.REPS ?? 30);
const KEY = `pp_lots_${'k'.repeat(24)}`;

interface Lot {
  readonly id: bigint;
  readonly member_id: string;
  readonly program_id: string;
  readonly issuing_brand_id: string;
  readonly remaining_pt4: bigint;
}
type Trx = Transaction<DB>;

/** As src/ledger built them before: a VALUES row per lot, a parameter per column. */
async function asValues(trx: Trx, lots: readonly Lot[], entry: bigint): Promise<void> {
  const values = sql.join(
    lots.map(
      (l) =>
        sql`(${l.id}::int8, ${-l.remaining_pt4}::int8, ${0n}::int8, ${null}::text, ${l.member_id}::text, ${l.program_id}::text, ${l.issuing_brand_id}::text, ${'available'}::text)`,
    ),
  );
  const r = await sql`update lots l set remaining_pt4 = l.remaining_pt4 + v.rd, held_pt4 = l.held_pt4 + v.hd,
      state = coalesce(v.st, l.state)
    from (values ${values}) as v(id, rd, hd, st, member_id, program_id, issuing_brand_id, state_from)
    where l.id = v.id and l.member_id = v.member_id and l.program_id = v.program_id
      and l.issuing_brand_id = v.issuing_brand_id and l.state = v.state_from
      and l.remaining_pt4 + v.rd >= 0 and l.held_pt4 + v.hd >= 0 and l.held_pt4 + v.hd <= l.remaining_pt4 + v.rd
    returning l.id`.execute(trx);
  if (r.rows.length !== lots.length) throw new Error('lot update missed rows');
  await trx
    .insertInto('lot_allocations')
    .values(
      lots.map((l) => ({
        entry_id: entry,
        lot_id: l.id,
        program_id: l.program_id,
        issuing_brand_id: l.issuing_brand_id,
        kind: 'expire',
        points_pt4: l.remaining_pt4,
        value_common: null,
      })),
    )
    .execute();
}

/** As src/ledger builds them now, sent as postEntries sends them (deferred, then carried). */
async function asLedger(trx: Trx, lots: readonly Lot[], entry: bigint): Promise<void> {
  const moves = lots.map((l) => ({ move: expireMove(l) }));
  const { statements, allocations } = lotMoveUpdates(trx, moves);
  for (const statement of statements) await deferWrite(trx, statement);
  await deferWrite(
    trx,
    allocationsStatement(
      trx,
      allocations.map((a) => ({ ...a, entry_id: entry })),
    ),
  );
  await sql`select 1`.execute(trx);
}

function expireMove(l: Lot): LotMove {
  return {
    lot_id: l.id,
    program_id: l.program_id,
    member_id: l.member_id,
    issuing_brand_id: l.issuing_brand_id,
    kind: 'expire',
    points_pt4: l.remaining_pt4,
    remaining_delta_pt4: -l.remaining_pt4,
    held_delta_pt4: 0n,
    state_from: 'available',
  };
}

/** CPU milliseconds a process has used (utime + stime). */
const cpuMs = (pid: number): number => procCpuSeconds(pid) * 1000;

class Rollback extends Error {}

async function measure(
  db: Kysely<DB>,
  run: (trx: Trx) => Promise<void>,
): Promise<{ wall: number; node: number; backend: number }> {
  const total = { wall: 0, node: 0, backend: 0 };
  for (let i = 0; i < REPS; i++) {
    await db
      .transaction()
      .execute(async (trx) => {
        const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows[0]!.pid;
        const b0 = cpuMs(pid);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await run(trx);
        total.wall += performance.now() - t0;
        const c = process.cpuUsage(c0);
        total.node += (c.user + c.system) / 1000;
        total.backend += cpuMs(pid) - b0;
        throw new Rollback();
      })
      .catch((e: unknown) => {
        if (!(e instanceof Rollback)) throw e;
      });
  }
  return { wall: total.wall / REPS, node: total.node / REPS, backend: total.backend / REPS };
}

async function main(): Promise<void> {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) throw new Error('set DATABASE_URL (PostgreSQL): this measures PostgreSQL statements');
  const scratch = await freshDatabase(adminUrl, 'pp_lots');
  const svc = await createService({ databaseUrl: scratch.url, adminKey: KEY, logger: false });
  try {
    const headers = { authorization: `Bearer ${KEY}` };
    await svc.app.inject({ method: 'PUT', url: '/v1/config', headers, payload: benchConfigDoc() as object });
    await seedLots(svc.store.db, {
      prefix: 'lt',
      members: 20_000,
      programs: [{ program_id: DEFAULT_PROGRAM, brand_id: 'northwind' }],
      lots_per_program: 10,
      points_per_lot: 10,
      awarded_at: new Date(Date.now() - 400 * 86_400_000).toISOString(),
      first_expiry: new Date(Date.now() - 35 * 86_400_000).toISOString(),
      label: 'lot-statements',
    });
    const db = svc.store.db;
    const lots = (
      await sql<Lot>`select id, member_id, program_id, issuing_brand_id, remaining_pt4 from lots
        order by id limit ${LOTS}`.execute(db)
    ).rows;
    const entry = (await sql<{ id: bigint }>`select id from entries limit 1`.execute(db)).rows[0]!.id;
    const variants: [string, (trx: Trx) => Promise<void>][] = [
      ['VALUES (before)', (trx) => asValues(trx, lots, entry)],
      ['unnest (src/ledger now)', (trx) => asLedger(trx, lots, entry)],
    ];
    for (let round = 1; round <= 2; round++)
      for (const [label, run] of variants) {
        const m = await measure(db, run);
        process.stdout.write(
          `${label.padEnd(26)} ${LOTS} lots: ${m.wall.toFixed(1)} ms wall, ${m.node.toFixed(1)} ms server CPU, ${m.backend.toFixed(1)} ms PostgreSQL backend CPU (round ${round}, ${REPS} runs)\n`,
        );
      }
  } finally {
    await svc.close();
    await new Promise((r) => setTimeout(r, 200)); // let the pool's sockets close before the drop
    await scratch.drop();
  }
}

await main();
