import { sql, type Kysely, type Transaction } from 'kysely';
import { AppError } from '../errors.ts';
import type { DB } from '../store/schema.ts';
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
 */
export async function postEntry(trx: Trx, input: EntryInput): Promise<PostedEntry> {
  assertEntryInput(input);
  const entry = await trx
    .insertInto('entries')
    .values({
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
    })
    .returning('id')
    .executeTakeFirstOrThrow();

  const merged = mergePostings(input);
  const member_balances = await applyMemberBalances(trx, merged.member, input);
  const systemIds = await ensureSystemAccounts(trx, merged.system.map((p) => p.account));
  const accountIds = new Map<string, bigint>([...member_balances.ids, ...systemIds]);

  const rows = [...merged.member, ...merged.system].map((p) => ({
    entry_id: entry.id,
    account_id: must(accountIds.get(accountKey(p.account))),
    program_id: p.account.program_id,
    amount_pt4: p.amount_pt4,
    at: input.at,
  }));
  if (rows.length > 0) await trx.insertInto('postings').values(rows).execute();

  const lot_ids = await insertLots(trx, entry.id, input);
  await applyLotMoves(trx, entry.id, input.lot_moves ?? []);
  return { entry_id: entry.id, member_balances: member_balances.balances, lot_ids };
}

interface MergedPosting {
  readonly account: AccountRef;
  readonly amount_pt4: bigint;
}

/** One row per account (an account posted twice is posted once with the sum), sorted by key so
 * that every transaction takes its row locks in the same order and none deadlock each other. */
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
  return { member: all.filter((p) => isMemberKind(p.account.kind)), system: all.filter((p) => !isMemberKind(p.account.kind)) };
}

async function applyMemberBalances(
  trx: Trx,
  postings: readonly MergedPosting[],
  input: EntryInput,
): Promise<{ ids: Map<string, bigint>; balances: Map<string, bigint> }> {
  const ids = new Map<string, bigint>();
  const balances = new Map<string, bigint>();
  const floorDelta = new Map<string, bigint>();
  for (const f of input.floor_moves ?? []) floorDelta.set(accountKey(f.account), f.delta_pt4);
  // Accounts with only a floor move (paying down a debt exactly) still need their row updated.
  const keys = new Set(postings.map((p) => accountKey(p.account)));
  const extra = (input.floor_moves ?? []).filter((f) => !keys.has(accountKey(f.account)));
  const items = [...postings, ...extra.map((f) => ({ account: f.account, amount_pt4: 0n }))].sort((a, b) =>
    accountKey(a.account) < accountKey(b.account) ? -1 : 1,
  );
  for (const p of items) {
    const key = accountKey(p.account);
    const floor = floorDelta.get(key) ?? 0n;
    const { program_id, kind, owner_id } = p.account;
    // A debit that would pass the floor, or of an account that does not exist yet, matches no
    // row (the WHERE): both mean "not enough points".
    let res;
    // PostgreSQL checks CHECK constraints on the proposed INSERT row before it looks for a
    // conflict, so a debit (or a floor paydown) must not go through the upsert: the row it
    // proposes (balance < floor, or floor > 0) fails the CHECK even when the account exists.
    // Such a move only ever updates an existing account; a missing one has nothing to debit.
    const insertable = p.amount_pt4 >= floor && floor <= 0n;
    try {
      res = !insertable
        ? await sql<{ id: bigint; balance_pt4: bigint }>`
        update accounts set balance_pt4 = balance_pt4 + ${p.amount_pt4}, floor_pt4 = floor_pt4 + ${floor}
          where program_id = ${program_id} and kind = ${kind} and owner_id = ${owner_id}
            and balance_pt4 + ${p.amount_pt4} >= floor_pt4 + ${floor} and floor_pt4 + ${floor} <= 0
        returning id, balance_pt4`.execute(trx)
        : await sql<{ id: bigint; balance_pt4: bigint }>`
        insert into accounts (program_id, kind, owner_id, balance_pt4, floor_pt4)
        values (${program_id}, ${kind}, ${owner_id}, ${p.amount_pt4}, ${floor})
        on conflict (program_id, kind, owner_id) do update
          set balance_pt4 = accounts.balance_pt4 + excluded.balance_pt4,
              floor_pt4 = accounts.floor_pt4 + excluded.floor_pt4
          where accounts.balance_pt4 + excluded.balance_pt4 >= accounts.floor_pt4 + excluded.floor_pt4
            and accounts.floor_pt4 + excluded.floor_pt4 <= 0
        returning id, balance_pt4`.execute(trx);
    } catch (e) {
      if (pgCode(e) === '23514') throw insufficient(p.account, p.amount_pt4);
      throw e;
    }
    const row = res.rows[0];
    if (!row) throw insufficient(p.account, p.amount_pt4);
    ids.set(key, row.id);
    balances.set(key, row.balance_pt4);
  }
  return { ids, balances };
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
  const rows = await db.selectFrom('accounts').select(['id', 'program_id', 'kind', 'owner_id']).where('kind', 'not like', 'member_%').execute();
  const cache = new Map<string, bigint>();
  for (const r of rows) cache.set(accountKey({ program_id: r.program_id, kind: r.kind as AccountRef['kind'], owner_id: r.owner_id }), r.id);
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

async function insertLots(trx: Trx, entry_id: bigint, input: EntryInput): Promise<bigint[]> {
  const lots: readonly NewLot[] = input.new_lots ?? [];
  if (lots.length === 0) return [];
  const rows = await trx
    .insertInto('lots')
    .values(
      lots.map((l) => ({
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
      })),
    )
    .returning('id')
    .execute();
  const ids = rows.map((r) => r.id);
  // A lot born while the member owes a recorded shortfall pays it down at once; the allocation
  // records that, so a lot's remaining is always its award minus its allocations.
  const paydowns = lots.flatMap((l, i) =>
    l.remaining_pt4 < l.points_pt4
      ? [{ entry_id, lot_id: ids[i]!, program_id: l.program_id, issuing_brand_id: l.issuing_brand_id, kind: 'debt_paydown', points_pt4: l.points_pt4 - l.remaining_pt4, value_common: null }]
      : [],
  );
  if (paydowns.length > 0) await trx.insertInto('lot_allocations').values(paydowns).execute();
  return ids;
}

async function applyLotMoves(trx: Trx, entry_id: bigint, moves: readonly LotMove[]): Promise<void> {
  if (moves.length === 0) return;
  const sorted = [...moves].sort((a, b) => (a.lot_id < b.lot_id ? -1 : a.lot_id > b.lot_id ? 1 : 0));
  for (const m of sorted) {
    const res = await trx
      .updateTable('lots')
      .set((eb) => ({
        remaining_pt4: eb('remaining_pt4', '+', m.remaining_delta_pt4),
        held_pt4: eb('held_pt4', '+', m.held_delta_pt4),
        ...(m.state_to ? { state: m.state_to } : {}),
      }))
      .where('id', '=', m.lot_id)
      // The lot is the one the move describes (member, program, issuer, state): the entry's
      // invariant-2 assertion and settlement trust these fields, so a lot that differs is refused.
      .where('member_id', '=', m.member_id)
      .where('program_id', '=', m.program_id)
      .where('issuing_brand_id', '=', m.issuing_brand_id)
      .where('state', '=', m.state_from)
      .where(sql<boolean>`remaining_pt4 + ${m.remaining_delta_pt4} >= 0`)
      .where(sql<boolean>`held_pt4 + ${m.held_delta_pt4} >= 0`)
      .where(sql<boolean>`held_pt4 + ${m.held_delta_pt4} <= remaining_pt4 + ${m.remaining_delta_pt4}`)
      .executeTakeFirst();
    if (res.numUpdatedRows !== 1n) {
      throw new AppError('CONCURRENT_UPDATE', `lot ${m.lot_id} changed under this entry`, { lot_id: String(m.lot_id) });
    }
  }
  await trx
    .insertInto('lot_allocations')
    .values(
      sorted.map((m) => ({
        entry_id,
        lot_id: m.lot_id,
        program_id: m.program_id,
        issuing_brand_id: m.issuing_brand_id,
        kind: m.kind,
        points_pt4: m.points_pt4,
        value_common: m.value_common ?? null,
      })),
    )
    .execute();
}

function must<T>(v: T | undefined): T {
  if (v === undefined) throw new Error('postEntry: account id missing after upsert');
  return v;
}

export function pgCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}
