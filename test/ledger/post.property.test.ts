// Property tests of the ledger core: postEntry inside db.transaction(), driven by random
// sequences of valid and invalid entries against an independent in-memory model.
//
// After every valid entry: verifyLedger is ok (invariants 1, 2, 7 as the store sees them) and the
// store's member balances and lots equal the model's. Every invalid entry is refused and changes
// nothing (the transaction rolls back). Also: the append-only triggers, the deferred balance
// trigger, and (both stores; real parallelism on PostgreSQL) concurrent spends never overdraw.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import * as fc from 'fast-check';
import { sql, type Kysely } from 'kysely';
import { isAppError } from '../../src/errors.ts';
import { memberAccount, systemAccount, type AccountRef } from '../../src/ledger/accounts.ts';
import type { EntryInput, LotMove, NewLot } from '../../src/ledger/entry.ts';
import { ledgerExpectation } from '../../src/ledger/expectations.ts';
import { pgCode, postEntry, type Trx } from '../../src/ledger/post.ts';
import { lockMembers } from '../../src/services/members.ts';
import { verifyLedger } from '../../src/services/verify.ts';
import type { DB } from '../../src/store/schema.ts';
import { createTestService, isPostgres, type TestService } from '../helpers/store.ts';

/** A transaction as commands run one: the ledger's SQL-side checks come back as catalogue errors. */
const inTx = <T>(db: Kysely<DB>, fn: (trx: Trx) => Promise<T>): Promise<T> =>
  db
    .transaction()
    .execute(fn)
    .catch((e: unknown) => {
      throw ledgerExpectation(e) ?? e;
    });

const PROGRAMS = ['p_alpha', 'p_beta'] as const;
const BRANDS = ['brand_a', 'brand_b'] as const;
const AT = new Date('2026-03-01T12:00:00Z');
const LATER = new Date('2027-03-01T12:00:00Z');

// ---------------------------------------------------------------------------------------------
// The model: what the store must hold, computed without the code under test.

interface ModelLot {
  id: bigint;
  member: string;
  program: string;
  brand: string;
  points: bigint;
  remaining: bigint;
  held: bigint;
  state: 'pending' | 'available';
}

interface ModelHold {
  member: string;
  program: string;
  parts: { lot: ModelLot; points: bigint }[];
}

class Model {
  readonly lots: ModelLot[] = [];
  readonly holds: ModelHold[] = [];
  constructor(readonly members: readonly string[]) {}

  /** Per member account: available, pending, held. */
  balances(member: string, program: string): { available: bigint; pending: bigint; held: bigint } {
    let available = 0n;
    let pending = 0n;
    let held = 0n;
    for (const l of this.lots) {
      if (l.member !== member || l.program !== program) continue;
      if (l.state === 'pending') pending += l.remaining;
      else available += l.remaining - l.held;
      held += l.held;
    }
    return { available, pending, held };
  }

  freeLots(member: string, program: string): ModelLot[] {
    return this.lots.filter(
      (l) =>
        l.member === member && l.program === program && l.state === 'available' && l.remaining - l.held > 0n,
    );
  }
}

const avail = (p: string, m: string): AccountRef => memberAccount(p, m, 'member_available');
const pend = (p: string, m: string): AccountRef => memberAccount(p, m, 'member_pending');
const held = (p: string, m: string): AccountRef => memberAccount(p, m, 'member_held');
const issuance = (p: string, b: string): AccountRef => systemAccount(p, 'issuance', b);
const redemption = (p: string, b: string): AccountRef => systemAccount(p, 'redemption', b);

function move(
  l: ModelLot,
  kind: LotMove['kind'],
  points: bigint,
  remaining_delta_pt4: bigint,
  held_delta_pt4: bigint,
  extra: Partial<LotMove> = {},
): LotMove {
  return {
    lot_id: l.id,
    program_id: l.program,
    member_id: l.member,
    issuing_brand_id: l.brand,
    kind,
    points_pt4: points,
    remaining_delta_pt4,
    held_delta_pt4,
    state_from: l.state,
    ...extra,
  };
}

/** Takes `amount` from the member's free lots, oldest first; null when they hold less. */
function allocate(
  model: Model,
  member: string,
  program: string,
  amount: bigint,
): { lot: ModelLot; points: bigint }[] | null {
  const parts: { lot: ModelLot; points: bigint }[] = [];
  let left = amount;
  for (const l of model.freeLots(member, program)) {
    if (left === 0n) break;
    const take = l.remaining - l.held < left ? l.remaining - l.held : left;
    parts.push({ lot: l, points: take });
    left -= take;
  }
  return left === 0n ? parts : null;
}

function newLot(member: string, program: string, brand: string, points: bigint, pending: boolean): NewLot {
  return {
    program_id: program,
    member_id: member,
    issuing_brand_id: brand,
    points_pt4: points,
    remaining_pt4: points,
    state: pending ? 'pending' : 'available',
    awarded_at: AT,
    available_at: pending ? LATER : AT,
    expires_at: null,
  };
}

// ---------------------------------------------------------------------------------------------
// Operations. A seed is interpreted against the model's current state, so every generated
// sequence is meaningful whatever came before it (and shrinks well).

const OP_KINDS = [
  'credit',
  'credit',
  'credit_pending',
  'spend',
  'spend',
  'hold',
  'capture',
  'release',
  'mature',
  'multi_program_credit',
] as const;
const BAD_KINDS = [
  'unbalanced',
  'float_amount',
  'zero_amount',
  'overdraw',
  'lot_overspend',
  'lots_apart',
  'pending_apart',
  'held_apart',
  'bad_date',
  'hold_overspend',
  'foreign_lot',
  'state_lie',
] as const;

interface Seed {
  readonly valid: boolean;
  readonly kind: number;
  readonly member: number;
  readonly program: number;
  readonly brand: number;
  readonly amount: bigint;
  readonly pick: number;
}

const seedArb: fc.Arbitrary<Seed> = fc.record({
  // Two valid entries for each invalid one, so the refusals meet lots and holds to refuse.
  valid: fc.nat({ max: 2 }).map((n) => n > 0),
  kind: fc.nat({ max: 99 }),
  member: fc.nat({ max: 1 }),
  program: fc.nat({ max: 1 }),
  brand: fc.nat({ max: 1 }),
  amount: fc.bigInt({ min: 1n, max: 5_000_000n }),
  pick: fc.nat({ max: 1000 }),
});

interface Planned {
  readonly name: string;
  readonly entry: EntryInput;
  /** Applies the entry's effect to the model, given the ids of the lots it created. */
  readonly apply: (lot_ids: readonly bigint[]) => void;
}

function planValid(model: Model, s: Seed): Planned {
  const member = model.members[s.member]!;
  const program = PROGRAMS[s.program]!;
  const brand = BRANDS[s.brand]!;
  const kind = OP_KINDS[s.kind % OP_KINDS.length]!;
  const credit = (pending: boolean): Planned => ({
    name: pending ? 'credit_pending' : 'credit',
    entry: {
      kind: 'test',
      member_id: member,
      at: AT,
      postings: [
        { account: pending ? pend(program, member) : avail(program, member), amount_pt4: s.amount },
        { account: issuance(program, brand), amount_pt4: -s.amount },
      ],
      new_lots: [newLot(member, program, brand, s.amount, pending)],
    },
    apply: (ids) => {
      model.lots.push({
        id: ids[0]!,
        member,
        program,
        brand,
        points: s.amount,
        remaining: s.amount,
        held: 0n,
        state: pending ? 'pending' : 'available',
      });
    },
  });
  const free = model.balances(member, program).available;

  switch (kind) {
    case 'credit':
      return credit(false);
    case 'credit_pending':
      return credit(true);
    case 'multi_program_credit': {
      // One entry crediting both programs (and splitting one program's credit over two lots).
      const half = s.amount / 2n;
      const lots = [
        newLot(member, 'p_alpha', brand, s.amount, false),
        newLot(member, 'p_beta', brand, s.amount - half, false),
      ];
      if (half > 0n) lots.push(newLot(member, 'p_beta', brand, half, false));
      return {
        name: kind,
        entry: {
          kind: 'test',
          member_id: member,
          at: AT,
          postings: [
            { account: avail('p_alpha', member), amount_pt4: s.amount },
            { account: issuance('p_alpha', brand), amount_pt4: -s.amount },
            { account: avail('p_beta', member), amount_pt4: s.amount - half },
            { account: avail('p_beta', member), amount_pt4: half },
            { account: issuance('p_beta', brand), amount_pt4: -s.amount },
          ].filter((p) => p.amount_pt4 !== 0n),
          new_lots: lots,
        },
        apply: (ids) => {
          lots.forEach((l, i) =>
            model.lots.push({
              id: ids[i]!,
              member,
              program: l.program_id,
              brand,
              points: l.points_pt4,
              remaining: l.points_pt4,
              held: 0n,
              state: 'available',
            }),
          );
        },
      };
    }
    case 'spend':
    case 'hold': {
      if (free === 0n) return credit(false);
      const amount = 1n + (s.amount % free); // 1..free
      const parts = allocate(model, member, program, amount)!;
      const isHold = kind === 'hold';
      return {
        name: kind,
        entry: {
          kind: isHold ? 'hold' : 'redemption',
          member_id: member,
          at: AT,
          postings: isHold
            ? [
                { account: avail(program, member), amount_pt4: -amount },
                { account: held(program, member), amount_pt4: amount },
              ]
            : [
                { account: avail(program, member), amount_pt4: -amount },
                { account: redemption(program, brand), amount_pt4: amount },
              ],
          lot_moves: parts.map((p) =>
            isHold
              ? move(p.lot, 'hold', p.points, 0n, p.points)
              : move(p.lot, 'spend', p.points, -p.points, 0n, { value_common: '1.25' }),
          ),
        },
        apply: () => {
          for (const p of parts) {
            if (isHold) p.lot.held += p.points;
            else p.lot.remaining -= p.points;
          }
          if (isHold) model.holds.push({ member, program, parts });
        },
      };
    }
    case 'capture':
    case 'release': {
      const i = s.pick % Math.max(1, model.holds.length);
      const h = model.holds[i];
      if (!h) return credit(false);
      const total = h.parts.reduce((a, p) => a + p.points, 0n);
      const capture = kind === 'capture';
      return {
        name: kind,
        entry: {
          kind,
          member_id: h.member,
          at: AT,
          postings: [
            { account: held(h.program, h.member), amount_pt4: -total },
            {
              account: capture ? redemption(h.program, brand) : avail(h.program, h.member),
              amount_pt4: total,
            },
          ],
          lot_moves: h.parts.map((p) =>
            capture
              ? move(p.lot, 'capture', p.points, -p.points, -p.points)
              : move(p.lot, 'release', p.points, 0n, -p.points),
          ),
        },
        apply: () => {
          for (const p of h.parts) {
            p.lot.held -= p.points;
            if (capture) p.lot.remaining -= p.points;
          }
          model.holds.splice(i, 1);
        },
      };
    }
    case 'mature': {
      const pending = model.lots.filter((l) => l.state === 'pending' && l.remaining > 0n);
      const l = pending[s.pick % Math.max(1, pending.length)];
      if (!l) return credit(true);
      return {
        name: kind,
        entry: {
          kind: 'maturation',
          member_id: l.member,
          at: LATER,
          postings: [
            { account: pend(l.program, l.member), amount_pt4: -l.remaining },
            { account: avail(l.program, l.member), amount_pt4: l.remaining },
          ],
          lot_moves: [move(l, 'mature', l.remaining, 0n, 0n, { state_to: 'available' })],
        },
        apply: () => {
          l.state = 'available';
        },
      };
    }
  }
}

function planInvalid(model: Model, s: Seed): { name: string; entry: EntryInput } {
  const member = model.members[s.member]!;
  const program = PROGRAMS[s.program]!;
  const brand = BRANDS[s.brand]!;
  const kind = BAD_KINDS[s.kind % BAD_KINDS.length]!;
  const free = model.balances(member, program).available;
  const base = { kind: 'test' as const, member_id: member, at: AT };
  const creditWith = (
    memberAmount: unknown,
    issuanceAmount: unknown,
    lotPoints: bigint = s.amount,
  ): EntryInput => ({
    ...base,
    postings: [
      { account: avail(program, member), amount_pt4: memberAmount as bigint },
      { account: issuance(program, brand), amount_pt4: issuanceAmount as bigint },
    ],
    new_lots: [newLot(member, program, brand, lotPoints, false)],
  });
  switch (kind) {
    case 'unbalanced':
      return { name: kind, entry: creditWith(s.amount, -s.amount - 1n - BigInt(s.pick)) };
    case 'float_amount':
      // A binary float where an exact amount belongs (invariant 7), however it got there.
      return { name: kind, entry: creditWith(Number(s.amount) + 0.5, -(Number(s.amount) + 0.5)) };
    case 'zero_amount':
      return {
        name: kind,
        entry: {
          ...base,
          postings: [
            { account: avail(program, member), amount_pt4: 0n },
            { account: issuance(program, brand), amount_pt4: 0n },
          ],
          new_lots: [],
        },
      };
    case 'overdraw': {
      // More than the member has, with lot moves that agree with the postings (so only the
      // balance guard in SQL stands in the way). With no lot at all, a bare debit.
      const amount = free + 1n + (s.amount % 1000n);
      const lots = model.freeLots(member, program);
      const moves = lots.map((l) => move(l, 'spend', l.remaining - l.held, -(l.remaining - l.held), 0n));
      const last = lots[lots.length - 1];
      if (last && moves.length > 0)
        moves[moves.length - 1] = move(
          last,
          'spend',
          last.remaining - last.held + (amount - free),
          -(last.remaining - last.held + (amount - free)),
          0n,
        );
      return {
        name: kind,
        entry: {
          ...base,
          kind: 'redemption',
          postings: [
            { account: avail(program, member), amount_pt4: -amount },
            { account: redemption(program, brand), amount_pt4: amount },
          ],
          lot_moves: moves,
        },
      };
    }
    case 'lot_overspend':
    case 'hold_overspend': {
      // One lot asked for more than it has left (free), the postings within the member's balance
      // when the member has other lots: only the lot guard refuses it.
      const lots = model.freeLots(member, program);
      const l = lots[s.pick % Math.max(1, lots.length)];
      if (!l) return { name: 'debit_without_lots', entry: creditWith(-s.amount, s.amount, s.amount) };
      const amount = l.remaining - l.held + 1n;
      const hold = kind === 'hold_overspend';
      return {
        name: kind,
        entry: {
          ...base,
          kind: hold ? 'hold' : 'redemption',
          postings: [
            { account: avail(program, member), amount_pt4: -amount },
            { account: hold ? held(program, member) : redemption(program, brand), amount_pt4: amount },
          ],
          lot_moves: [hold ? move(l, 'hold', amount, 0n, amount) : move(l, 'spend', amount, -amount, 0n)],
        },
      };
    }
    case 'lots_apart':
      // The credit's lot disagrees with its posting.
      return { name: kind, entry: creditWith(s.amount, -s.amount, s.amount + 1n + BigInt(s.pick)) };
    case 'pending_apart':
      // A pending lot credited to the available account.
      return {
        name: kind,
        entry: {
          ...creditWith(s.amount, -s.amount),
          new_lots: [newLot(member, program, brand, s.amount, true)],
        },
      };
    case 'held_apart': {
      // Points moved to held without holding any lot (or a spend that forgets its lots).
      const amount = free > 0n ? 1n + (s.amount % free) : s.amount;
      return {
        name: kind,
        entry: {
          ...base,
          kind: 'hold',
          postings: [
            { account: avail(program, member), amount_pt4: -amount },
            { account: held(program, member), amount_pt4: amount },
          ],
        },
      };
    }
    case 'bad_date':
      return { name: kind, entry: { ...creditWith(s.amount, -s.amount), at: new Date(Number.NaN) } };
    case 'foreign_lot':
    case 'state_lie': {
      // The allocation names a lot that is not what it claims: another member's or program's
      // lot (foreign_lot), or a pending lot claimed as available (state_lie). Everything else
      // agrees, so only the lot update's guards can catch it.
      const amount = free > 0n ? 1n + (s.amount % free) : 0n;
      const foreign = model.lots.find((l) =>
        kind === 'foreign_lot'
          ? (l.member !== member || l.program !== program) &&
            l.state === 'available' &&
            l.remaining - l.held >= amount
          : l.member === member && l.program === program && l.state === 'pending' && l.remaining >= amount,
      );
      if (amount === 0n || !foreign)
        return {
          name: `${kind}(none)`,
          entry: { ...creditWith(s.amount, -s.amount), at: new Date(Number.NaN) },
        };
      return {
        name: kind,
        entry: {
          ...base,
          kind: 'redemption',
          postings: [
            { account: avail(program, member), amount_pt4: -amount },
            { account: redemption(program, brand), amount_pt4: amount },
          ],
          lot_moves: [
            {
              ...move(foreign, 'spend', amount, -amount, 0n),
              member_id: member,
              program_id: program,
              state_from: 'available',
            },
          ],
        },
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Checks against the store.

const REFUSED = new Set(['INVALID_LEDGER_ENTRY', 'INSUFFICIENT_POINTS', 'CONCURRENT_UPDATE']);

/** Refused by the ledger: an AppError with a ledger code, or a database error (pg SQLSTATE). */
function assertRefused(e: unknown, label: string): void {
  if (isAppError(e)) {
    assert.ok(REFUSED.has(e.code), `${label}: unexpected code ${e.code}: ${e.message}`);
    return;
  }
  assert.ok(pgCode(e), `${label}: expected a ledger refusal, got ${String(e)}`);
}

interface Snapshot {
  counts: Record<string, string>;
  accounts: string[];
  lots: string[];
}

async function snapshot(db: Kysely<DB>): Promise<Snapshot> {
  const counts: Record<string, string> = {};
  for (const t of ['entries', 'postings', 'lots', 'lot_allocations', 'accounts'] as const) {
    const r = await db
      .selectFrom(t)
      .select((eb) => eb.fn.countAll<bigint>().as('n'))
      .executeTakeFirstOrThrow();
    counts[t] = String(r.n);
  }
  const accounts = (
    await db.selectFrom('accounts').select(['id', 'balance_pt4', 'floor_pt4']).orderBy('id').execute()
  ).map((a) => `${a.id}:${a.balance_pt4}:${a.floor_pt4}`);
  const lots = (
    await db.selectFrom('lots').select(['id', 'remaining_pt4', 'held_pt4', 'state']).orderBy('id').execute()
  ).map((l) => `${l.id}:${l.remaining_pt4}:${l.held_pt4}:${l.state}`);
  return { counts, accounts, lots };
}

async function assertMatchesModel(db: Kysely<DB>, model: Model, label: string): Promise<void> {
  const report = await verifyLedger(db);
  assert.ok(
    report.ok,
    `${label}: verify failed: ${report.checks
      .filter((c) => !c.ok)
      .map((c) => `${c.name}: ${c.detail}`)
      .join('; ')}`,
  );
  const rows = await db
    .selectFrom('accounts')
    .select(['program_id', 'kind', 'owner_id', 'balance_pt4', 'floor_pt4'])
    .where('owner_id', 'in', [...model.members])
    .execute();
  for (const m of model.members) {
    for (const p of PROGRAMS) {
      const want = model.balances(m, p);
      const got = (kind: string) =>
        rows.find((r) => r.owner_id === m && r.program_id === p && r.kind === kind)?.balance_pt4 ?? 0n;
      assert.deepEqual(
        { available: got('member_available'), pending: got('member_pending'), held: got('member_held') },
        want,
        `${label}: balances of ${m} in ${p}`,
      );
    }
  }
  const lots = await db
    .selectFrom('lots')
    .select(['id', 'remaining_pt4', 'held_pt4', 'state', 'points_pt4'])
    .where('member_id', 'in', [...model.members])
    .orderBy('id')
    .execute();
  assert.deepEqual(
    lots.map((l) => `${l.id}:${l.points_pt4}:${l.remaining_pt4}:${l.held_pt4}:${l.state}`),
    model.lots.map((l) => `${l.id}:${l.points}:${l.remaining}:${l.held}:${l.state}`),
    `${label}: lots`,
  );
}

// System account balances are sums of postings: the model's expected system totals.
async function systemTotals(db: Kysely<DB>, members: readonly string[]): Promise<Map<string, bigint>> {
  const res = await sql<{ program_id: string; kind: string; total: bigint }>`
    select a.program_id, a.kind, sum(p.amount_pt4)::int8 as total
    from postings p join accounts a on a.id = p.account_id
    join entries e on e.id = p.entry_id
    where e.member_id in (${sql.join(members)})
    group by a.program_id, a.kind`.execute(db);
  return new Map(res.rows.map((r) => [`${r.program_id}/${r.kind}`, r.total]));
}

let runNo = 0;
const freshMembers = (): string[] => {
  runNo++;
  return [`m${runNo}_x`, `m${runNo}_y`];
};

// ---------------------------------------------------------------------------------------------

void describe('ledger postEntry (property)', () => {
  let t: TestService;
  let db: Kysely<DB>;
  before(async () => {
    t = await createTestService();
    db = t.ctx.db;
  });
  after(async () => {
    await t?.close();
  });

  void it('random valid and invalid entries keep every invariant and match the model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(seedArb, { minLength: 1, maxLength: 16 }), async (seeds) => {
        const model = new Model(freshMembers());
        for (const [i, s] of seeds.entries()) {
          if (s.valid) {
            const plan = planValid(model, s);
            const label = `step ${i} ${plan.name}`;
            const posted = await inTx(db, (trx) => postEntry(trx, plan.entry));
            plan.apply(posted.lot_ids);
            await assertMatchesModel(db, model, label);
          } else {
            const plan = planInvalid(model, s);
            const label = `step ${i} invalid ${plan.name}`;
            const before = await snapshot(db);
            await assert.rejects(
              inTx(db, (trx) => postEntry(trx, plan.entry)),
              (e) => (assertRefused(e, label), true),
              `${label} was accepted`,
            );
            assert.deepEqual(await snapshot(db), before, `${label} changed the store`);
          }
        }
        // Every point a member holds came from issuance and every point gone went to redemption:
        // per program, issuance + redemption + member accounts sum to zero.
        const totals = await systemTotals(db, model.members);
        for (const p of PROGRAMS) {
          const members = model.members.reduce((a, m) => {
            const b = model.balances(m, p);
            return a + b.available + b.pending + b.held;
          }, 0n);
          const iss = totals.get(`${p}/issuance`) ?? 0n;
          const red = totals.get(`${p}/redemption`) ?? 0n;
          assert.equal(
            iss + red + members,
            0n,
            `program ${p}: issuance ${iss} + redemption ${red} + members ${members}`,
          );
        }
      }),
      // All runs share one store (fresh members each run), so a failing run leaves it broken for
      // the next: report the first counterexample as found rather than shrink through a corrupted
      // store.
      { numRuns: isPostgres() ? 40 : 25, endOnFailure: true },
    );
  });

  void it('each SQL guard refuses what the entry assertions cannot see, and changes nothing', async () => {
    const [x, y] = freshMembers();
    const credit = (m: string, program: string, points: bigint, pending = false) =>
      inTx(
        db,
        async (trx) =>
          (
            await postEntry(trx, {
              kind: 'test',
              member_id: m,
              at: AT,
              postings: [
                { account: pending ? pend(program, m) : avail(program, m), amount_pt4: points },
                { account: issuance(program, 'brand_a'), amount_pt4: -points },
              ],
              new_lots: [newLot(m, program, 'brand_a', points, pending)],
            })
          ).lot_ids[0]!,
      );
    const lot1 = await credit(x!, 'p_alpha', 100n);
    const lot2 = await credit(x!, 'p_alpha', 100n);
    const pendingLot = await credit(x!, 'p_alpha', 50n, true);
    const lotY = await credit(y!, 'p_alpha', 100n);
    const lotBeta = await credit(x!, 'p_beta', 100n);
    // A hold of 30 on lot2, to capture too much from below.
    await inTx(db, (trx) =>
      postEntry(trx, {
        kind: 'hold',
        member_id: x!,
        at: AT,
        postings: [
          { account: avail('p_alpha', x!), amount_pt4: -30n },
          { account: held('p_alpha', x!), amount_pt4: 30n },
        ],
        lot_moves: [
          {
            lot_id: lot2,
            program_id: 'p_alpha',
            member_id: x!,
            issuing_brand_id: 'brand_a',
            kind: 'hold',
            points_pt4: 30n,
            remaining_delta_pt4: 0n,
            held_delta_pt4: 30n,
            state_from: 'available',
          },
        ],
      }),
    );
    const spendMove = (lot_id: bigint, points: bigint, extra: Partial<LotMove> = {}): LotMove => ({
      lot_id,
      program_id: 'p_alpha',
      member_id: x!,
      issuing_brand_id: 'brand_a',
      kind: 'spend',
      points_pt4: points,
      remaining_delta_pt4: -points,
      held_delta_pt4: 0n,
      state_from: 'available',
      ...extra,
    });
    const spend = (points: bigint, moves: LotMove[]): EntryInput => ({
      kind: 'redemption',
      member_id: x!,
      at: AT,
      postings: [
        { account: avail('p_alpha', x!), amount_pt4: -points },
        { account: redemption('p_alpha', 'brand_b'), amount_pt4: points },
      ],
      lot_moves: moves,
    });
    const cases: [string, EntryInput, string][] = [
      ['one lot asked for more than it has', spend(150n, [spendMove(lot1, 150n)]), 'CONCURRENT_UPDATE'],
      ['spending points that are held', spend(80n, [spendMove(lot2, 80n)]), 'CONCURRENT_UPDATE'],
      ["another member's lot", spend(50n, [spendMove(lotY, 50n)]), 'CONCURRENT_UPDATE'],
      ["another program's lot", spend(50n, [spendMove(lotBeta, 50n)]), 'CONCURRENT_UPDATE'],
      ['a pending lot claimed as available', spend(50n, [spendMove(pendingLot, 50n)]), 'CONCURRENT_UPDATE'],
      [
        'the wrong issuing brand',
        spend(50n, [spendMove(lot1, 50n, { issuing_brand_id: 'brand_b' })]),
        'CONCURRENT_UPDATE',
      ],
      ['a lot that does not exist', spend(50n, [spendMove(999_999_999n, 50n)]), 'CONCURRENT_UPDATE'],
      [
        'more than the balance, lots agreeing',
        spend(200n, [spendMove(lot1, 100n), spendMove(lot2, 100n)]),
        'INSUFFICIENT_POINTS',
      ],
      [
        'capturing more than is held',
        {
          kind: 'capture',
          member_id: x!,
          at: AT,
          postings: [
            { account: held('p_alpha', x!), amount_pt4: -40n },
            { account: redemption('p_alpha', 'brand_b'), amount_pt4: 40n },
          ],
          lot_moves: [spendMove(lot2, 40n, { kind: 'capture', held_delta_pt4: -40n })],
        },
        'INSUFFICIENT_POINTS',
      ],
      [
        'a debit of an account that was never credited',
        {
          kind: 'redemption',
          member_id: y!,
          at: AT,
          postings: [
            { account: avail('p_beta', y!), amount_pt4: -10n },
            { account: redemption('p_beta', 'brand_b'), amount_pt4: 10n },
          ],
          lot_moves: [spendMove(lotBeta, 10n, { member_id: y!, program_id: 'p_beta' })],
        },
        'INSUFFICIENT_POINTS',
      ],
    ];
    for (const [name, entry, code] of cases) {
      const before = await snapshot(db);
      await assert.rejects(
        inTx(db, (trx) => postEntry(trx, entry)),
        (e: unknown) => isAppError(e) && e.code === code,
        name,
      );
      assert.deepEqual(await snapshot(db), before, `${name} changed the store`);
    }
    const report = await verifyLedger(db);
    assert.ok(report.ok, JSON.stringify(report.checks.filter((c) => !c.ok)));
  });

  void it('an entry refused in the middle of a larger transaction rolls the whole transaction back', async () => {
    const [m] = freshMembers();
    const before = await snapshot(db);
    await assert.rejects(
      inTx(db, async (trx) => {
        await postEntry(trx, {
          kind: 'test',
          member_id: m!,
          at: AT,
          postings: [
            { account: avail('p_alpha', m!), amount_pt4: 500n },
            { account: issuance('p_alpha', 'brand_a'), amount_pt4: -500n },
          ],
          new_lots: [newLot(m!, 'p_alpha', 'brand_a', 500n, false)],
        });
        // The credit above is visible inside the transaction, and the overdraw still fails.
        await postEntry(trx, {
          kind: 'redemption',
          member_id: m!,
          at: AT,
          postings: [
            { account: avail('p_alpha', m!), amount_pt4: -501n },
            { account: redemption('p_alpha', 'brand_b'), amount_pt4: 501n },
          ],
        });
      }),
      (e) => (assertRefused(e, 'second entry'), true),
    );
    assert.deepEqual(await snapshot(db), before);
    assert.ok((await verifyLedger(db)).ok);
  });

  void it('entries, postings and lot allocations are append-only', async () => {
    const [m] = freshMembers();
    const posted = await inTx(db, async (trx) => {
      const credit = await postEntry(trx, {
        kind: 'test',
        member_id: m!,
        at: AT,
        postings: [
          { account: avail('p_alpha', m!), amount_pt4: 100n },
          { account: issuance('p_alpha', 'brand_a'), amount_pt4: -100n },
        ],
        new_lots: [newLot(m!, 'p_alpha', 'brand_a', 100n, false)],
      });
      const lot = credit.lot_ids[0]!;
      const spend = await postEntry(trx, {
        kind: 'redemption',
        member_id: m!,
        at: AT,
        postings: [
          { account: avail('p_alpha', m!), amount_pt4: -40n },
          { account: redemption('p_alpha', 'brand_b'), amount_pt4: 40n },
        ],
        lot_moves: [
          {
            lot_id: lot,
            program_id: 'p_alpha',
            member_id: m!,
            issuing_brand_id: 'brand_a',
            kind: 'spend',
            points_pt4: 40n,
            remaining_delta_pt4: -40n,
            held_delta_pt4: 0n,
            state_from: 'available',
          },
        ],
      });
      return spend.entry_id;
    });
    const attempts: [string, (trx: Trx) => Promise<unknown>][] = [
      [
        'update entries',
        (trx) => trx.updateTable('entries').set({ kind: 'forged' }).where('id', '=', posted).execute(),
      ],
      ['delete entries', (trx) => trx.deleteFrom('entries').where('id', '=', posted).execute()],
      [
        'update postings',
        (trx) => trx.updateTable('postings').set({ amount_pt4: 1n }).where('entry_id', '=', posted).execute(),
      ],
      ['delete postings', (trx) => trx.deleteFrom('postings').where('entry_id', '=', posted).execute()],
      [
        'update lot_allocations',
        (trx) =>
          trx.updateTable('lot_allocations').set({ points_pt4: 1n }).where('entry_id', '=', posted).execute(),
      ],
      [
        'delete lot_allocations',
        (trx) => trx.deleteFrom('lot_allocations').where('entry_id', '=', posted).execute(),
      ],
    ];
    for (const [name, attempt] of attempts) {
      const before = await snapshot(db);
      await assert.rejects(inTx(db, attempt), (e: unknown) => {
        assert.equal(pgCode(e), 'P0001', `${name}: ${String(e)}`);
        assert.match(String((e as Error).message), /append-only/);
        return true;
      });
      assert.deepEqual(await snapshot(db), before, name);
    }
    assert.ok((await verifyLedger(db)).ok);
  });

  void it('the balance check rejects an unbalanced entry written with raw SQL, at its statement', async () => {
    const [m] = freshMembers();
    const before = await snapshot(db);
    let raisedBy = 'nothing';
    await assert.rejects(
      inTx(db, async (trx) => {
        const e = await sql<{
          id: bigint;
        }>`insert into entries (kind, member_id, at) values ('test', ${m}, ${AT}) returning id`.execute(trx);
        const acc = await sql<{
          id: bigint;
        }>`insert into accounts (program_id, kind, owner_id) values ('p_alpha', 'issuance', 'brand_raw') on conflict (program_id, kind, owner_id) do update set kind = excluded.kind returning id`.execute(
          trx,
        );
        const entryId = e.rows[0]!.id;
        const accountId = acc.rows[0]!.id;
        // Balanced in p_alpha, unbalanced in p_beta: the check sums each program.
        raisedBy = 'the postings statement';
        await sql`insert into postings (entry_id, account_id, program_id, amount_pt4, at) values
          (${entryId}, ${accountId}, 'p_alpha', 10, ${AT}), (${entryId}, ${accountId}, 'p_alpha', -10, ${AT}),
          (${entryId}, ${accountId}, 'p_beta', 7, ${AT})`.execute(trx);
        // Checked per statement (migration 011): the commit is never reached.
        raisedBy = 'the commit';
      }),
      (e: unknown) => {
        assert.equal(pgCode(e), 'P0002', String(e));
        assert.match(String((e as Error).message), /does not balance in program p_beta/);
        return true;
      },
    );
    assert.equal(raisedBy, 'the postings statement');
    assert.deepEqual(await snapshot(db), before);
    // A balanced raw entry commits (the trigger is not simply rejecting everything).
    await inTx(db, async (trx) => {
      const e = await sql<{
        id: bigint;
      }>`insert into entries (kind, member_id, at) values ('test', ${m}, ${AT}) returning id`.execute(trx);
      const acc = await sql<{
        id: bigint;
      }>`insert into accounts (program_id, kind, owner_id) values ('p_gamma', 'adjustment', 'grp') on conflict (program_id, kind, owner_id) do update set kind = excluded.kind returning id`.execute(
        trx,
      );
      const acc2 = await sql<{
        id: bigint;
      }>`insert into accounts (program_id, kind, owner_id) values ('p_gamma', 'issuance', 'grp') on conflict (program_id, kind, owner_id) do update set kind = excluded.kind returning id`.execute(
        trx,
      );
      await sql`insert into postings (entry_id, account_id, program_id, amount_pt4, at) values
        (${e.rows[0]!.id}, ${acc.rows[0]!.id}, 'p_gamma', 3, ${AT}), (${e.rows[0]!.id}, ${acc2.rows[0]!.id}, 'p_gamma', -3, ${AT})`.execute(
        trx,
      );
    });
    assert.ok((await verifyLedger(db)).ok);
  });

  void it('a float amount is refused before any SQL runs, even when it balances', async () => {
    const [m] = freshMembers();
    const before = await snapshot(db);
    await assert.rejects(
      inTx(db, (trx) =>
        postEntry(trx, {
          kind: 'test',
          member_id: m!,
          at: AT,
          postings: [
            { account: avail('p_alpha', m!), amount_pt4: 100 as never },
            { account: issuance('p_alpha', 'brand_a'), amount_pt4: -100 as never },
          ],
          new_lots: [
            {
              ...newLot(m!, 'p_alpha', 'brand_a', 100n, false),
              points_pt4: 100 as never,
              remaining_pt4: 100 as never,
            },
          ],
        }),
      ),
      (e: unknown) => isAppError(e) && e.code === 'INVALID_LEDGER_ENTRY',
    );
    assert.deepEqual(await snapshot(db), before);
  });

  // Concurrent spends from one member. On PostgreSQL these are real parallel transactions on the
  // pool's separate connections; on PGlite the driver serializes them (still a useful check).
  for (const locked of [true, false]) {
    void it(`parallel spends never overdraw (${locked ? 'with lockMembers' : 'lot guards only'})`, async () => {
      const [m] = freshMembers();
      const LOTS = 6;
      const LOT_PT4 = 1_000n;
      const SPEND = 700n;
      const N = 16;
      const balance = BigInt(LOTS) * LOT_PT4;
      await inTx(db, async (trx) => {
        await trx.insertInto('members').values({ id: m!, created_at: AT, referred_by: null }).execute();
        for (let i = 0; i < LOTS; i++) {
          await postEntry(trx, {
            kind: 'test',
            member_id: m!,
            at: AT,
            postings: [
              { account: avail('p_alpha', m!), amount_pt4: LOT_PT4 },
              { account: issuance('p_alpha', 'brand_a'), amount_pt4: -LOT_PT4 },
            ],
            new_lots: [newLot(m!, 'p_alpha', 'brand_a', LOT_PT4, false)],
          });
        }
      });

      const spendOnce = (n: number) =>
        inTx(db, async (trx) => {
          if (locked) await lockMembers(trx, [m!]);
          const lots = await trx
            .selectFrom('lots')
            .select(['id', 'remaining_pt4', 'held_pt4', 'issuing_brand_id'])
            .where('member_id', '=', m!)
            .where('program_id', '=', 'p_alpha')
            .where('state', '=', 'available')
            .where(sql<boolean>`remaining_pt4 > held_pt4`)
            .orderBy('id')
            .execute();
          const moves: LotMove[] = [];
          let left = SPEND;
          for (const l of lots) {
            if (left === 0n) break;
            const free = l.remaining_pt4 - l.held_pt4;
            const take = free < left ? free : left;
            moves.push({
              lot_id: l.id,
              program_id: 'p_alpha',
              member_id: m!,
              issuing_brand_id: l.issuing_brand_id,
              kind: 'spend',
              points_pt4: take,
              remaining_delta_pt4: -take,
              held_delta_pt4: 0n,
              state_from: 'available',
            });
            left -= take;
          }
          // Not enough in the lots: post the spend anyway, pretending the last lot has the rest,
          // so that it is the store (not this test) that refuses it.
          if (left > 0n && moves.length > 0) {
            const last = moves[moves.length - 1]!;
            moves[moves.length - 1] = {
              ...last,
              points_pt4: last.points_pt4 + left,
              remaining_delta_pt4: last.remaining_delta_pt4 - left,
            };
          }
          await postEntry(trx, {
            kind: 'redemption',
            member_id: m!,
            at: AT,
            request_id: `spend_${n}`,
            postings: [
              { account: avail('p_alpha', m!), amount_pt4: -SPEND },
              { account: redemption('p_alpha', 'brand_b'), amount_pt4: SPEND },
            ],
            lot_moves: moves,
          });
        });

      const results = await Promise.allSettled(Array.from({ length: N }, (_, n) => spendOnce(n)));
      const ok = results.filter((r) => r.status === 'fulfilled').length;
      for (const r of results) if (r.status === 'rejected') assertRefused(r.reason, 'parallel spend');
      const allowed = Number(balance / SPEND);
      if (locked) assert.equal(ok, allowed, `successes with lockMembers`);
      else assert.ok(ok >= 1 && ok <= allowed, `successes without lock: ${ok} (allowed ${allowed})`);

      const acc = await db
        .selectFrom('accounts')
        .select('balance_pt4')
        .where('owner_id', '=', m!)
        .where('kind', '=', 'member_available')
        .executeTakeFirstOrThrow();
      assert.equal(acc.balance_pt4, balance - BigInt(ok) * SPEND);
      assert.ok(acc.balance_pt4 >= 0n);
      const lotsLeft = await db
        .selectFrom('lots')
        .select((eb) => eb.fn.sum<bigint>('remaining_pt4').as('r'))
        .where('member_id', '=', m!)
        .executeTakeFirstOrThrow();
      assert.equal(BigInt(lotsLeft.r), acc.balance_pt4);
      const report = await verifyLedger(db);
      assert.ok(report.ok, JSON.stringify(report.checks.filter((c) => !c.ok)));
    });
  }
});
