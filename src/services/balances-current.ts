import { CompiledQuery } from 'kysely';
import type { Group } from '../domain/config/group.ts';
import { textArray } from '../store/pg-arrays.ts';
import type { Ctx } from './context.ts';
import { Lane, rejectAll } from './lane.ts';
import { perService } from './per-service.ts';

// The current balances read (no as_of, or as_of not in the past) in one statement. It is the
// hottest read of the API and each round trip costs ~0.4 ms of CPU on each side
// (docs/performance.md), so the member check, running balances, enrollments, expiring lots,
// pending lots and expired-but-not-swept points come back as one row of json columns, or no row when the member does not exist.
// The query is the function pointpool_current_balances_many (migration 016; the answer's shape is
// 013's), whose plan PostgreSQL keeps per connection: planning it on each read cost more than
// running it. It takes many members at once, so reads that arrive together cost one call.
// Lot lists are rendered in SQL into the contract's shape, so a member with hundreds of lots
// costs one JSON.parse instead of a BigInt and a Date per lot. The test
// balances.current-vs-history pins this rendering to the historical path's JavaScript one.

export interface CurrentRead {
  /** [program_id, account kind, balance in pt4 as decimal text] for the member's accounts. */
  readonly accounts: readonly (readonly [string, string, string])[];
  /** [program_id, tier] per enrollment. */
  readonly enrollments: readonly (readonly [string, string | null])[];
  /** program_id → lots expiring within that program's window, by expiry then id. */
  readonly expiring: Readonly<Record<string, { points: number; expires_at: string }[]>>;
  /** program_id → up to 100 pending lots, by availability then id. */
  readonly pending: Readonly<Record<string, { points: number; available_at: string }[]>>;
  /** [program_id, lot state, pt4 as decimal text]: points of lots expired at the instant, not yet swept. */
  readonly expired: readonly (readonly [string, 'available' | 'pending', string])[];
}

// A constant text with no query building per read: the members and their instants as arrays
// (one element for a read alone), $3 the programs in force with their expiring windows (a lot of
// a program outside the configuration is not shown). One row per member that exists, `i` its
// place in the arrays from 1.
const READ = `select i, accounts, enrollments, expiring, pending, expired
  from pointpool_current_balances_many($1::text[], $2::timestamptz[], $3::json)`;

interface Row {
  accounts: CurrentRead['accounts'] | null;
  enrollments: CurrentRead['enrollments'] | null;
  expiring: CurrentRead['expiring'] | null;
  pending: CurrentRead['pending'] | null;
  expired: CurrentRead['expired'] | null;
}

/** The member's current state in one round trip, or null when the member does not exist. */
export function readCurrent(
  ctx: Ctx,
  group: Group,
  member_id: string,
  at_iso: string,
): Promise<CurrentRead | null> {
  return laneOf(ctx).submit(
    () => readOne(ctx, group, member_id, at_iso),
    (resolve, reject) => ({ group, member_id, at_iso, resolve, reject }),
  );
}

async function readOne(
  ctx: Ctx,
  group: Group,
  member_id: string,
  at_iso: string,
): Promise<CurrentRead | null> {
  const rows = await readRows(ctx, group, [member_id], [at_iso]);
  return rows[0] ? answer(rows[0]) : null;
}

async function readRows(
  ctx: Ctx,
  group: Group,
  member_ids: readonly string[],
  ats: readonly string[],
): Promise<(Row & { i: number })[]> {
  const { rows } = await ctx.db.executeQuery<Row & { i: number }>(
    CompiledQuery.raw(READ, [textArray(member_ids), textArray(ats), expiryWindows(group)]),
  );
  return rows;
}

const answer = (r: Row): CurrentRead => ({
  accounts: r.accounts ?? [],
  enrollments: r.enrollments ?? [],
  expiring: r.expiring ?? {},
  pending: r.pending ?? {},
  expired: r.expired ?? [],
});

// Reads that arrive while another is in flight are answered together by one statement
// (services/lane.ts): one round trip and one call for many members. The statement starts after
// every read in it arrived, so each still sees everything committed before it was asked.
const MAX_READS_TOGETHER = 256;

interface WaitingRead {
  readonly group: Group;
  readonly member_id: string;
  readonly at_iso: string;
  readonly resolve: (r: CurrentRead | null) => void;
  readonly reject: (e: unknown) => void;
}

/** Counts since start, per service (exposed in /metrics): statements that answered several reads. */
export interface SharedReadStats {
  statements: number;
  reads: number;
}

export const sharedReadStats = perService((): SharedReadStats => ({ statements: 0, reads: 0 }));

const laneOf = perService(
  (ctx) => new Lane<WaitingRead>({ take: takeReads, run: (batch) => readMany(ctx, batch), fail: rejectAll }),
);

/** The first waiting reads under the same configuration (one $3), in arrival order. */
function takeReads(queue: WaitingRead[]): WaitingRead[] {
  const group = queue[0]!.group;
  const batch: WaitingRead[] = [];
  const rest: WaitingRead[] = [];
  for (const w of queue) (w.group === group && batch.length < MAX_READS_TOGETHER ? batch : rest).push(w);
  queue.splice(0, queue.length, ...rest);
  return batch;
}

/** Settles every read; should the shared statement fail, each read runs alone and fails alone. */
async function readMany(ctx: Ctx, batch: readonly WaitingRead[]): Promise<void> {
  if (batch.length === 1) {
    const w = batch[0]!;
    return readOne(ctx, w.group, w.member_id, w.at_iso).then(w.resolve, w.reject);
  }
  let rows: (Row & { i: number })[];
  try {
    rows = await readRows(
      ctx,
      batch[0]!.group,
      batch.map((w) => w.member_id),
      batch.map((w) => w.at_iso),
    );
  } catch {
    await Promise.all(
      batch.map((w) => readOne(ctx, w.group, w.member_id, w.at_iso).then(w.resolve, w.reject)),
    );
    return;
  }
  sharedReadStats(ctx).statements += 1;
  sharedReadStats(ctx).reads += batch.length;
  const found = new Map(rows.map((r) => [r.i, r]));
  batch.forEach((w, n) => {
    const r = found.get(n + 1);
    w.resolve(r ? answer(r) : null);
  });
}

// Each program's expiring window, as the $3 parameter. A configuration is immutable once
// compiled, so this is built once per version, not per read.
const windows = new WeakMap<Group, string>();
function expiryWindows(group: Group): string {
  let w = windows.get(group);
  if (w === undefined) {
    w = JSON.stringify(
      [...group.programs.values()].map((p) => ({
        program_id: p.id,
        window_seconds: p.expiring_window_days * 86_400,
      })),
    );
    windows.set(group, w);
  }
  return w;
}
