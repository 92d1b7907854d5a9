import { sql, type CompiledQuery, type Kysely, type Transaction } from 'kysely';
import { AppError } from '../errors.ts';
import { intArray, textArray, timestampArray } from '../store/pg-arrays.ts';
import type { DB } from '../store/schema.ts';
import { deferWrite, prefetch, type Prefetched } from '../store/write-behind.ts';
import { allocationsStatement, lotMoveUpdates, type Allocation } from './lot-moves.ts';
import { memberBalanceMoves, type MergedPosting } from './member-balances.ts';
import { accountKey, isMemberKind, type AccountRef } from './accounts.ts';
import { assertEntryInput, type EntryInput, type NewLot } from './entry.ts';

export type Trx = Transaction<DB>;

export interface PostedEntry {
  readonly entry_id: bigint;
  /** Ids of the lots the entry created, in the order given. */
  readonly lot_ids: readonly bigint[];
}

/** Entry and lot ids taken from the sequences ahead of the rows that use them. */
export interface EntryIds {
  readonly entries: readonly bigint[];
  readonly lots: readonly bigint[];
}

/**
 * Posts one entry in the caller's transaction: the entry row, its postings, member balances,
 * new lots and lot movements. The caller has locked the members (lockMembers) so that the lots
 * it allocated from are the lots that are there.
 *
 * Invariants 1, 2 and 7 are asserted on the input (assertEntryInput) and enforced by SQL:
 * member balances move by a conditional upsert that refuses to pass the account's floor, lots by
 * guarded updates and CHECK constraints, the entry's balance by a check on each statement that
 * inserts postings (migration 011: an entry's postings travel in one statement).
 * Every statement is a deferred write (store/write-behind.ts) that travels with the transaction's
 * next statement or its commit; the conditional ones assert their own row counts in SQL
 * (pp_expect, migration 007), which services/transaction.ts maps back to INSUFFICIENT_POINTS or
 * CONCURRENT_UPDATE. With `ids` reserved beforehand (reserveIds) posting costs no round trip.
 * Each statement takes a column as one array parameter (store/pg-arrays.ts, unnest): built with
 * a parameter per value, a batch's or an expiry page's statements cost this process more CPU
 * than the database spent running them.
 */
export async function postEntry(trx: Trx, input: EntryInput, ids?: EntryIds): Promise<PostedEntry> {
  const [posted] = await postEntries(trx, [input], ids);
  return posted!;
}

export const MAX_ENTRIES_PER_CALL = 5_000;

/**
 * Posts several entries with one statement per table rather than per entry (a job's batch, a
 * batch of events): the same checks as postEntry.
 */
export async function postEntries(
  trx: Trx,
  inputs: readonly EntryInput[],
  reserved?: EntryIds,
): Promise<PostedEntry[]> {
  if (inputs.length === 0) return [];
  if (inputs.length > MAX_ENTRIES_PER_CALL)
    throw new AppError('INVALID_LEDGER_ENTRY', `at most ${MAX_ENTRIES_PER_CALL} entries per call`);
  for (const input of inputs) assertEntryInput(input);
  const lotCount = inputs.reduce((n, input) => n + (input.new_lots ?? []).length, 0);
  const ids =
    reserved && reserved.entries.length >= inputs.length && reserved.lots.length >= lotCount
      ? reserved
      : splitIds((await trx.executeQuery(nextIdsQuery(trx, inputs.length, lotCount))).rows);
  const entryIds = ids.entries;
  const perEntry = inputs.map(mergePostings);
  // System accounts must exist before the postings that name them (cached: no round trip).
  await ensureSystemAccounts(trx, dedupe(perEntry.flatMap((m) => m.system.map((p) => p.account))));
  for (const part of chunks(
    inputs.map((input, i) => ({ id: entryIds[i]!, input })),
    2_000,
  ))
    await deferWrite(trx, entriesStatement(trx, part));
  for (const statement of memberBalanceMoves(trx, inputs, perEntry)) await deferWrite(trx, statement);
  const moved = inputs.flatMap((input, i) => (input.lot_moves ?? []).map((move) => ({ index: i, move })));
  const lotMoves = lotMoveUpdates(trx, moved);
  for (const statement of lotMoves.statements) await deferWrite(trx, statement);

  const postingRows = perEntry.map((m, i) =>
    [...m.member, ...m.system].map((p) => ({ entry_id: entryIds[i]!, posting: p, at: inputs[i]!.at })),
  );
  // Each entry's postings go in one statement: the database checks their sum per statement
  // (migration 011).
  for (const rows of wholeGroups(postingRows, 5_000)) await deferWrite(trx, postingsStatement(trx, rows));

  const lotIds = await insertLots(trx, entryIds, ids.lots, inputs);
  const allocations = lotMoves.allocations.map((a, k) => ({ ...a, entry_id: entryIds[moved[k]!.index]! }));
  for (const part of chunks(allocations, 2_000)) await deferWrite(trx, allocationsStatement(trx, part));
  return inputs.map((_input, i) => ({ entry_id: entryIds[i]!, lot_ids: lotIds[i]! }));
}

/**
 * Queues the ids `entries` entries with `lots` new lots will need, to travel with the command's
 * reads (store/write-behind.ts); pass them to postEntry. Unused ids are gaps, as after a rollback.
 */
export async function reserveIds(trx: Trx, entries: number, lots: number): Promise<Prefetched<IdRow>> {
  return prefetch(trx, nextIdsQuery(trx, entries, lots));
}

export const idsOf = (rows: readonly IdRow[]): EntryIds => splitIds(rows);

/**
 * Postings find their account ids by a join, so they need no result from the balance moves
 * before them; a posting that finds no account fails its own count (PP003). The join is a probe
 * of the accounts' unique key per posting (lateral, offset 0): as a plain join, a batch's
 * thousands of postings were costed cheaper as a hash of the whole accounts table, a scan whose
 * cost grows with the group's members (docs/performance.md).
 */
function postingsStatement(
  trx: Trx,
  rows: readonly { entry_id: bigint; posting: MergedPosting; at: Date }[],
): CompiledQuery {
  const account = (f: (a: AccountRef) => string) => textArray(rows.map((r) => f(r.posting.account)));
  return sql`
    with p as (
      insert into postings (entry_id, account_id, program_id, amount_pt4, at)
      select v.entry_id, a.id, v.program_id, v.amount, v.at
      from unnest(${intArray(rows.map((r) => r.entry_id))}::int8[], ${account((a) => a.program_id)}::text[],
                  ${account((a) => a.kind)}::text[], ${account((a) => a.owner_id)}::text[],
                  ${intArray(rows.map((r) => r.posting.amount_pt4))}::int8[],
                  ${timestampArray(rows.map((r) => r.at.getTime()))}::timestamptz[])
        with ordinality as v(entry_id, program_id, kind, owner_id, amount, at, n)
      cross join lateral (
        select a.id from accounts a
        where a.program_id = v.program_id and a.kind = v.kind and a.owner_id = v.owner_id
        offset 0) a
      order by v.n
      returning 1)
    select pp_expect((select count(*) from p) = ${rows.length}::int8, 'PP003',
      ${JSON.stringify({ message: 'a posting found no account' })})`.compile(trx);
}

// The details go as one JSON document joined back by position, not as a jsonb[] literal: each
// detail is stringified once, without the array literal's escaping of every quote on top (and
// the text quoting's doubling of those backslashes). Measured on 1,000 accrual details: 18.4 →
// 2.3 ms to build here, 12–13 ms → 10–13 ms in PostgreSQL.
function entriesStatement(trx: Trx, rows: readonly { id: bigint; input: EntryInput }[]): CompiledQuery {
  const text = (f: (e: EntryInput) => string | null | undefined) =>
    textArray(rows.map((r) => f(r.input) ?? null));
  return sql`
    insert into entries (id, kind, member_id, at, event_id, request_id, key_id, corrects_entry_id, ref_type, ref_id, detail)
    select u.id, u.kind, u.member_id, u.at, u.event_id, u.request_id, u.key_id, u.corrects, u.ref_type, u.ref_id, d.detail
    from unnest(${intArray(rows.map((r) => r.id))}::int8[], ${text((e) => e.kind)}::text[],
                ${text((e) => e.member_id)}::text[], ${timestampArray(rows.map((r) => r.input.at.getTime()))}::timestamptz[],
                ${text((e) => e.event_id)}::text[], ${text((e) => e.request_id)}::text[], ${text((e) => e.key_id)}::text[],
                ${intArray(rows.map((r) => r.input.corrects_entry_id ?? null))}::int8[],
                ${text((e) => e.ref_type)}::text[], ${text((e) => e.ref_id)}::text[])
      with ordinality as u(id, kind, member_id, at, event_id, request_id, key_id, corrects, ref_type, ref_id, n)
    join json_array_elements(${JSON.stringify(rows.map((r) => r.input.detail ?? {}))}::json)
      with ordinality as d(detail, n) on d.n = u.n`.compile(trx);
}

export interface IdRow {
  k: string;
  id: bigint;
}

/** Ids taken from the tables' sequences up front, entries and lots in one statement, so rows
 * inserted in bulk can reference each other. */
function nextIdsQuery(trx: Trx, entries: number, lots: number): CompiledQuery<IdRow> {
  return sql<IdRow>`
    select 'e' as k, nextval('entries_id_seq'::regclass) as id from generate_series(1, ${entries}::int4)
    union all
    select 'l' as k, nextval('lots_id_seq'::regclass) as id from generate_series(1, ${lots}::int4)`.compile(
    trx,
  );
}

function splitIds(rows: readonly unknown[]): { entries: bigint[]; lots: bigint[] } {
  const idRows = rows as readonly IdRow[];
  return {
    entries: idRows.filter((r) => r.k === 'e').map((r) => r.id),
    lots: idRows.filter((r) => r.k === 'l').map((r) => r.id),
  };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The groups' items in chunks of about `size`, never splitting a group. */
function wholeGroups<T>(groups: readonly (readonly T[])[], size: number): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  for (const group of groups) {
    if (current.length > 0 && current.length + group.length > size) {
      out.push(current);
      current = [];
    }
    current.push(...group);
  }
  if (current.length > 0) out.push(current);
  return out;
}

function dedupe(accounts: readonly AccountRef[]): AccountRef[] {
  return [...new Map(accounts.map((a) => [accountKey(a), a])).values()];
}

/** One row per account (an account posted twice is posted once with the sum), sorted by key. */
function mergePostings(input: EntryInput): { member: MergedPosting[]; system: MergedPosting[] } {
  const byKey = new Map<string, MergedPosting>();
  for (const p of input.postings) {
    const key = accountKey(p.account);
    const prev = byKey.get(key);
    byKey.set(key, { account: p.account, amount_pt4: (prev?.amount_pt4 ?? 0n) + p.amount_pt4 });
  }
  const all = [...byKey.entries()]
    .filter(([, p]) => p.amount_pt4 !== 0n)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, p]) => p);
  return {
    member: all.filter((p) => isMemberKind(p.account.kind)),
    system: all.filter((p) => !isMemberKind(p.account.kind)),
  };
}

// System account ids never change once committed. Config apply creates every system account
// the configuration can need and then loads them here (loadSystemAccounts), so postings find
// their ids without a round trip. An account missing from the cache is created in the entry's
// own transaction and not cached, since that transaction may still roll back.
const systemIdCache = new WeakMap<object, Map<string, bigint>>();
type Handle = Pick<Trx, 'getExecutor'>;
const cacheOf = (h: Handle) => systemIdCache.get(h.getExecutor().adapter);

export async function loadSystemAccounts(db: Kysely<DB>): Promise<number> {
  const rows = await db
    .selectFrom('accounts')
    .select(['id', 'program_id', 'kind', 'owner_id'])
    .where('kind', 'not like', 'member_%')
    .execute();
  const cache = new Map<string, bigint>();
  for (const r of rows)
    cache.set(
      accountKey({ program_id: r.program_id, kind: r.kind as AccountRef['kind'], owner_id: r.owner_id }),
      r.id,
    );
  systemIdCache.set(db.getExecutor().adapter, cache);
  return cache.size;
}

async function ensureSystemAccounts(trx: Trx, accounts: readonly AccountRef[]): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  const cache = cacheOf(trx);
  const missing = accounts.filter((a) => {
    const id = cache?.get(accountKey(a));
    if (id !== undefined) out.set(accountKey(a), id);
    return id === undefined;
  });
  if (missing.length === 0) return out;
  await trx
    .insertInto('accounts')
    .values(missing.map((a) => ({ program_id: a.program_id, kind: a.kind, owner_id: a.owner_id })))
    .onConflict((oc) => oc.columns(['program_id', 'kind', 'owner_id']).doNothing())
    .execute();
  for (const a of missing) {
    const row = await trx
      .selectFrom('accounts')
      .select('id')
      .where('program_id', '=', a.program_id)
      .where('kind', '=', a.kind)
      .where('owner_id', '=', a.owner_id)
      .executeTakeFirstOrThrow();
    out.set(accountKey(a), row.id);
  }
  return out;
}

async function insertLots(
  trx: Trx,
  entryIds: readonly bigint[],
  ids: readonly bigint[],
  inputs: readonly EntryInput[],
): Promise<bigint[][]> {
  const all: { entry_id: bigint; lot: NewLot; index: number }[] = [];
  inputs.forEach((input, i) =>
    (input.new_lots ?? []).forEach((lot) => all.push({ entry_id: entryIds[i]!, lot, index: i })),
  );
  const out: bigint[][] = inputs.map(() => []);
  if (all.length === 0) return out;
  for (const part of chunks(
    all.map((a, k) => ({ id: ids[k]!, entry_id: a.entry_id, lot: a.lot })),
    2_000,
  ))
    await deferWrite(trx, lotsStatement(trx, part));
  all.forEach((a, k) => out[a.index]!.push(ids[k]!));
  // A lot born while the member owes a recorded shortfall pays it down at once; the allocation
  // records that, so a lot's remaining is always its award minus its allocations.
  const paydowns = all.flatMap(({ entry_id, lot: l }, k): Allocation[] =>
    l.remaining_pt4 < l.points_pt4
      ? [
          {
            entry_id,
            lot_id: ids[k]!,
            program_id: l.program_id,
            issuing_brand_id: l.issuing_brand_id,
            kind: 'debt_paydown',
            points_pt4: l.points_pt4 - l.remaining_pt4,
            value_common: null,
          },
        ]
      : [],
  );
  for (const part of chunks(paydowns, 2_000)) await deferWrite(trx, allocationsStatement(trx, part));
  return out;
}

function lotsStatement(
  trx: Trx,
  rows: readonly { id: bigint; entry_id: bigint; lot: NewLot }[],
): CompiledQuery {
  const text = (f: (l: NewLot) => string | null | undefined) => textArray(rows.map((r) => f(r.lot) ?? null));
  const int = (f: (l: NewLot) => bigint) => intArray(rows.map((r) => f(r.lot)));
  const instant = (f: (l: NewLot) => Date | null) =>
    timestampArray(rows.map((r) => f(r.lot)?.getTime() ?? null));
  return sql`
    insert into lots (id, program_id, member_id, issuing_brand_id, points_pt4, remaining_pt4, state,
                      awarded_at, available_at, expires_at, source_entry_id, source_event_id)
    select * from unnest(${intArray(rows.map((r) => r.id))}::int8[], ${text((l) => l.program_id)}::text[],
                         ${text((l) => l.member_id)}::text[], ${text((l) => l.issuing_brand_id)}::text[],
                         ${int((l) => l.points_pt4)}::int8[], ${int((l) => l.remaining_pt4)}::int8[],
                         ${text((l) => l.state)}::text[], ${instant((l) => l.awarded_at)}::timestamptz[],
                         ${instant((l) => l.available_at)}::timestamptz[], ${instant((l) => l.expires_at)}::timestamptz[],
                         ${intArray(rows.map((r) => r.entry_id))}::int8[], ${text((l) => l.source_event_id)}::text[])`.compile(
    trx,
  );
}

export function pgCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;
}
