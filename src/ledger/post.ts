import { sql, type CompiledQuery, type Kysely, type Transaction } from 'kysely';
import { AppError } from '../errors.ts';
import type { DB } from '../store/schema.ts';
import { deferWrite, together } from '../store/write-behind.ts';
import { accountKey, isMemberKind, type AccountRef } from './accounts.ts';
import { assertEntryInput, type EntryInput, type LotMove, type NewLot } from './entry.ts';

export type Trx = Transaction<DB>;

export interface PostedEntry {
  readonly entry_id: bigint;
  /** New balances of the member accounts the entry touched, by accountKey. */
  readonly member_balances: ReadonlyMap<string, bigint>;
  /** Ids of the lots the entry created, in the order given. */
  readonly lot_ids: readonly bigint[];
}

/**
 * Posts one entry in the caller's transaction: the entry row, its postings, member balances,
 * new lots and lot movements. The caller has locked the members (lockMembers) so that the lots
 * it allocated from are the lots that are there.
 *
 * Invariants 1, 2 and 7 are asserted on the input (assertEntryInput) and enforced by SQL:
 * member balances move by a conditional upsert that refuses to pass the account's floor, lots by
 * updates guarded by CHECK constraints, the entry's balance by a deferred constraint trigger.
 * The rows nobody reads back here (entry, postings, lots, allocations) are deferred writes
 * (store/write-behind.ts): they travel with the transaction's next statement or its commit.
 */
export async function postEntry(trx: Trx, input: EntryInput): Promise<PostedEntry> {
  const [posted] = await postEntries(trx, [input]);
  return posted!;
}

export const MAX_ENTRIES_PER_CALL = 5_000;

/**
 * Posts several entries with one statement per table rather than per entry (a job's batch, a
 * batch of events): the same checks as postEntry, a handful of round trips in all.
 */
export async function postEntries(trx: Trx, inputs: readonly EntryInput[]): Promise<PostedEntry[]> {
  if (inputs.length === 0) return [];
  if (inputs.length > MAX_ENTRIES_PER_CALL)
    throw new AppError('INVALID_LEDGER_ENTRY', `at most ${MAX_ENTRIES_PER_CALL} entries per call`);
  for (const input of inputs) assertEntryInput(input);
  const lotCount = inputs.reduce((n, input) => n + (input.new_lots ?? []).length, 0);
  const perEntry = inputs.map(mergePostings);
  // The ids and the member balance moves need nothing from each other: one round trip.
  const { ids, member } = await applyMemberBalances(
    trx,
    inputs,
    perEntry,
    nextIdsQuery(trx, inputs.length, lotCount),
  );
  const entryIds = ids.entries;
  for (const rows of chunks(
    inputs.map((input, i) => entryRow(entryIds[i]!, input)),
    2_000,
  )) {
    await deferWrite(trx, trx.insertInto('entries').values(rows));
  }
  const systemIds = await ensureSystemAccounts(
    trx,
    dedupe(perEntry.flatMap((m) => m.system.map((p) => p.account))),
  );
  const accountIds = new Map<string, bigint>([...member.ids, ...systemIds]);

  const postingRows = perEntry.flatMap((m, i) =>
    [...m.member, ...m.system].map((p) => ({
      entry_id: entryIds[i]!,
      account_id: must(accountIds.get(accountKey(p.account))),
      program_id: p.account.program_id,
      amount_pt4: p.amount_pt4,
      at: inputs[i]!.at,
    })),
  );
  for (const rows of chunks(postingRows, 5_000))
    await deferWrite(trx, trx.insertInto('postings').values(rows));

  const lotIds = await insertLots(trx, entryIds, ids.lots, inputs);
  await applyLotMoves(
    trx,
    inputs.flatMap((input, i) => (input.lot_moves ?? []).map((m) => ({ entry_id: entryIds[i]!, move: m }))),
  );
  return inputs.map((input, i) => ({
    entry_id: entryIds[i]!,
    member_balances: new Map(
      [...perEntry[i]!.member].map((p) => [
        accountKey(p.account),
        member.balances.get(accountKey(p.account))!,
      ]),
    ),
    lot_ids: lotIds[i]!,
  }));
}

function entryRow(id: bigint, input: EntryInput) {
  return {
    id,
    kind: input.kind,
    member_id: input.member_id ?? null,
    at: input.at,
    event_id: input.event_id ?? null,
    request_id: input.request_id ?? null,
    key_id: input.key_id ?? null,
    corrects_entry_id: input.corrects_entry_id ?? null,
    ref_type: input.ref_type ?? null,
    ref_id: input.ref_id ?? null,
    detail: JSON.stringify(input.detail ?? {}) as unknown as Record<string, unknown>,
  };
}

interface IdRow {
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

function splitIds(rows: readonly IdRow[]): { entries: bigint[]; lots: bigint[] } {
  return {
    entries: rows.filter((r) => r.k === 'e').map((r) => r.id),
    lots: rows.filter((r) => r.k === 'l').map((r) => r.id),
  };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function dedupe(accounts: readonly AccountRef[]): AccountRef[] {
  return [...new Map(accounts.map((a) => [accountKey(a), a])).values()];
}

interface MergedPosting {
  readonly account: AccountRef;
  readonly amount_pt4: bigint;
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

/**
 * Moves every member account the entries touch in one conditional upsert. Rows go in key order,
 * so concurrent writers take row locks in the same order. A debit that would pass the account's
 * floor, or of an account that does not exist yet, matches no row (the WHERE): both mean "not
 * enough points", and the whole transaction rolls back.
 */
async function applyMemberBalances(
  trx: Trx,
  inputs: readonly EntryInput[],
  perEntry: readonly { member: MergedPosting[] }[],
  idsQuery: CompiledQuery<IdRow>,
): Promise<{
  ids: { entries: bigint[]; lots: bigint[] };
  member: { ids: Map<string, bigint>; balances: Map<string, bigint> };
}> {
  const rows = new Map<string, { account: AccountRef; amount: bigint; floor: bigint }>();
  const at = (account: AccountRef) => {
    const key = accountKey(account);
    let r = rows.get(key);
    if (!r) rows.set(key, (r = { account, amount: 0n, floor: 0n }));
    return r;
  };
  for (const m of perEntry) for (const p of m.member) at(p.account).amount += p.amount_pt4;
  for (const input of inputs) for (const f of input.floor_moves ?? []) at(f.account).floor += f.delta_pt4;
  const ids = new Map<string, bigint>();
  const balances = new Map<string, bigint>();
  const sorted = [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
  // PostgreSQL checks CHECK constraints on the proposed INSERT row before it looks for a
  // conflict, so a debit (or a floor paydown) must not go through the upsert: the row it proposes
  // (balance < floor, or floor > 0) fails the CHECK even when the account exists and has enough.
  // Such rows only ever update an existing account (a missing one has nothing to debit). Runs of
  // consecutive rows of one kind keep the statements, and so the row locks, in key order.
  const insertable = (r: { amount: bigint; floor: bigint }) => r.amount >= r.floor && r.floor <= 0n;
  const runs: (typeof sorted)[] = [];
  for (const r of sorted) {
    const last = runs[runs.length - 1];
    if (last && last.length < 2_000 && insertable(last[0]!) === insertable(r)) last.push(r);
    else runs.push([r]);
  }
  type BalanceRow = { id: bigint; program_id: string; kind: string; owner_id: string; balance_pt4: bigint };
  const statements = runs.map((part) => {
    const values = sql.join(
      part.map(
        (r) =>
          sql`(${r.account.program_id}, ${r.account.kind}, ${r.account.owner_id}, ${r.amount}::int8, ${r.floor}::int8)`,
      ),
    );
    return (
      !insertable(part[0]!)
        ? sql<BalanceRow>`
        update accounts a set balance_pt4 = a.balance_pt4 + v.amount, floor_pt4 = a.floor_pt4 + v.floor
        from (values ${values}) as v(program_id, kind, owner_id, amount, floor)
        where a.program_id = v.program_id and a.kind = v.kind and a.owner_id = v.owner_id
          and a.balance_pt4 + v.amount >= a.floor_pt4 + v.floor and a.floor_pt4 + v.floor <= 0
        returning a.id, a.program_id, a.kind, a.owner_id, a.balance_pt4`
        : sql<BalanceRow>`
        insert into accounts (program_id, kind, owner_id, balance_pt4, floor_pt4)
        values ${values}
        on conflict (program_id, kind, owner_id) do update
          set balance_pt4 = accounts.balance_pt4 + excluded.balance_pt4,
              floor_pt4 = accounts.floor_pt4 + excluded.floor_pt4
          where accounts.balance_pt4 + excluded.balance_pt4 >= accounts.floor_pt4 + excluded.floor_pt4
            and accounts.floor_pt4 + excluded.floor_pt4 <= 0
        returning id, program_id, kind, owner_id, balance_pt4`
    ).compile(trx);
  });
  let results: unknown[][];
  try {
    results = await together(trx, [...statements, idsQuery]);
  } catch (e) {
    if (pgCode(e) === '23514') {
      const debit = sorted.find((r) => r.amount < 0n) ?? sorted[0]!;
      throw insufficient(debit.account, debit.amount);
    }
    throw e;
  }
  runs.forEach((part, i) => {
    for (const r of results[i] as BalanceRow[]) {
      const key = accountKey({
        program_id: r.program_id,
        kind: r.kind as AccountRef['kind'],
        owner_id: r.owner_id,
      });
      ids.set(key, r.id);
      balances.set(key, r.balance_pt4);
    }
    const missing = part.find((r) => !ids.has(accountKey(r.account)));
    if (missing) throw insufficient(missing.account, missing.amount);
  });
  return { ids: splitIds(results[results.length - 1] as IdRow[]), member: { ids, balances } };
}

function insufficient(account: AccountRef, amount_pt4: bigint): AppError {
  return new AppError('INSUFFICIENT_POINTS', `Not enough points in ${account.program_id} (${account.kind})`, {
    program_id: account.program_id,
    account_kind: account.kind,
    requested_pt4: String(-amount_pt4),
  });
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
  const rows = all.map(({ entry_id, lot: l }, k) => ({
    id: ids[k]!,
    program_id: l.program_id,
    member_id: l.member_id,
    issuing_brand_id: l.issuing_brand_id,
    points_pt4: l.points_pt4,
    remaining_pt4: l.remaining_pt4,
    state: l.state,
    awarded_at: l.awarded_at,
    available_at: l.available_at,
    expires_at: l.expires_at,
    source_entry_id: entry_id,
    source_event_id: l.source_event_id ?? null,
  }));
  for (const part of chunks(rows, 2_000)) await deferWrite(trx, trx.insertInto('lots').values(part));
  all.forEach((a, k) => out[a.index]!.push(ids[k]!));
  // A lot born while the member owes a recorded shortfall pays it down at once; the allocation
  // records that, so a lot's remaining is always its award minus its allocations.
  const paydowns = all.flatMap(({ entry_id, lot: l }, k) =>
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
  for (const part of chunks(paydowns, 2_000))
    await deferWrite(trx, trx.insertInto('lot_allocations').values(part));
  return out;
}

/**
 * Applies every lot movement in one guarded UPDATE (moves of the same lot merged), then records
 * each movement as an allocation. A lot that would go below zero, or hold more than it has,
 * matches no row: the entry is refused.
 */
async function applyLotMoves(trx: Trx, moves: readonly { entry_id: bigint; move: LotMove }[]): Promise<void> {
  if (moves.length === 0) return;
  // Each lot must be the one its moves describe (member, program, issuer, state before): the
  // entry's invariant-2 assertion and settlement trust those fields, so a lot that differs (or
  // moves of one lot that disagree) is refused.
  const perLot = new Map<
    bigint,
    { remaining: bigint; held: bigint; state: 'available' | null; first: LotMove }
  >();
  for (const { move: m } of moves) {
    const cur = perLot.get(m.lot_id) ?? { remaining: 0n, held: 0n, state: null, first: m };
    const f = cur.first;
    if (
      f.member_id !== m.member_id ||
      f.program_id !== m.program_id ||
      f.issuing_brand_id !== m.issuing_brand_id
    ) {
      throw new AppError(
        'INVALID_LEDGER_ENTRY',
        `moves of lot ${m.lot_id} disagree on its member, program or issuer`,
        { lot_id: String(m.lot_id) },
      );
    }
    cur.remaining += m.remaining_delta_pt4;
    cur.held += m.held_delta_pt4;
    if (m.state_to) cur.state = m.state_to;
    perLot.set(m.lot_id, cur);
  }
  const sorted = [...perLot.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const part of chunks(sorted, 2_000)) {
    const values = sql.join(
      part.map(
        ([id, d]) =>
          sql`(${id}::int8, ${d.remaining}::int8, ${d.held}::int8, ${d.state}::text, ${d.first.member_id}::text, ${d.first.program_id}::text, ${d.first.issuing_brand_id}::text, ${d.first.state_from}::text)`,
      ),
    );
    const res = await sql<{ id: bigint }>`
      update lots l set remaining_pt4 = l.remaining_pt4 + v.rd, held_pt4 = l.held_pt4 + v.hd, state = coalesce(v.st, l.state)
      from (values ${values}) as v(id, rd, hd, st, member_id, program_id, issuing_brand_id, state_from)
      where l.id = v.id and l.member_id = v.member_id and l.program_id = v.program_id
        and l.issuing_brand_id = v.issuing_brand_id and l.state = v.state_from
        and l.remaining_pt4 + v.rd >= 0 and l.held_pt4 + v.hd >= 0
        and l.held_pt4 + v.hd <= l.remaining_pt4 + v.rd
      returning l.id`.execute(trx);
    if (res.rows.length !== part.length) {
      const done = new Set(res.rows.map((r) => r.id));
      const bad = part.find(([id]) => !done.has(id))?.[0];
      throw new AppError(
        'CONCURRENT_UPDATE',
        `lot ${bad} cannot move as the entry asks (changed under it, or overdrawn)`,
        { lot_id: String(bad) },
      );
    }
  }
  const rows = moves.map(({ entry_id, move: m }) => ({
    entry_id,
    lot_id: m.lot_id,
    program_id: m.program_id,
    issuing_brand_id: m.issuing_brand_id,
    kind: m.kind,
    points_pt4: m.points_pt4,
    value_common: m.value_common ?? null,
  }));
  for (const part of chunks(rows, 2_000))
    await deferWrite(trx, trx.insertInto('lot_allocations').values(part));
}

function must<T>(v: T | undefined): T {
  if (v === undefined) throw new Error('postEntry: account id missing after upsert');
  return v;
}

export function pgCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;
}
