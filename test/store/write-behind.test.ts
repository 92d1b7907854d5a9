import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sql, type CompiledQuery, type Kysely } from 'kysely';
import {
  deferWrite,
  inlineParameters,
  literal,
  MAX_INLINE_CHARS,
  MAX_INLINE_PARAMETERS,
  prefetch,
  PREPARED_STATEMENTS,
  together,
} from '../../src/store/write-behind.ts';
import { inTransaction, PREPARED } from '../../src/services/transaction.ts';
import { withTestService } from '../helpers/store.ts';

// The write-behind buffer sends deferred writes as SQL text with the next statement, so its
// literal quoting must be exact for every string, and a deferred write must behave like an
// ordinary one: seen by the next statement, committed with the transaction, and its error
// aborting the transaction.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

void describe('inlineParameters', () => {
  void it('replaces each $n by its literal, $10 not mistaken for $1, never inside quotes or comments', () => {
    const params = Array.from({ length: 10 }, (_, i) => `v${i + 1}`);
    const text = inlineParameters(`select $1, $10, '$2' as "$3" -- $4\n, $5 /* $6 */`, params);
    assert.equal(text, `select 'v1', 'v10', '$2' as "$3" -- $4\n, 'v5' /* $6 */`);
  });

  void it('gives the same text the values of each call (the text is scanned once and kept)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string(), fc.string()), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 0, max: 700 }),
        (calls, shape) => {
          // Shapes past the cache's size make it start over midway through.
          const statement = `select $2 as "a$1", $1, '$1' -- ${shape}`;
          for (const [a, b] of calls)
            assert.equal(
              inlineParameters(statement, [a, b]),
              `select ${literal(b)} as "a$1", ${literal(a)}, '$1' -- ${shape}`,
            );
        },
      ),
      { numRuns: 1500 },
    );
    assert.equal(inlineParameters('select $$x$$', []), null);
    assert.equal(inlineParameters('select $$x$$', []), null);
  });

  void it('quotes values as the drivers would send them', () => {
    assert.equal(literal(null), 'NULL');
    assert.equal(literal(undefined), 'NULL');
    assert.equal(literal(12n), `'12'`);
    assert.equal(literal(true), `'true'`);
    assert.equal(literal(new Date('2026-01-02T03:04:05.006Z')), `'2026-01-02T03:04:05.006Z'`);
    assert.equal(literal({ a: "it's" }), `'{"a":"it''s"}'`);
    assert.equal(literal('a\\b'), ` E'a\\\\b'`);
  });

  void it('refuses what has no safe text form: NUL, arrays, binary, non-finite numbers, dollar quotes, unknown $n', () => {
    assert.equal(literal('a\0b'), null);
    assert.equal(literal(['a']), null);
    assert.equal(literal(new Uint8Array([1])), null);
    assert.equal(literal(Number.NaN), null);
    assert.equal(inlineParameters('select $$x$$', []), null);
    assert.equal(inlineParameters('select $2', ['a']), null);
    assert.equal(inlineParameters('select $1', [['a']]), null);
  });
});

async function scratchTable(db: AnyDb): Promise<void> {
  await sql`create table wb_test (id int8 primary key, s text not null, check (id > 0))`.execute(db);
}

void describe('write-behind on the store', () => {
  void it('any string survives the literal round trip exactly (property)', async () => {
    await withTestService(async ({ ctx }) => {
      const db = ctx.db as AnyDb;
      await scratchTable(db);
      let id = 0n;
      await fc.assert(
        fc.asyncProperty(
          fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\0')),
          async (s) => {
            id += 1n;
            await db.transaction().execute(async (trx) => {
              await deferWrite(trx, trx.insertInto('wb_test').values({ id, s }));
            });
            const row = await db.selectFrom('wb_test').select('s').where('id', '=', id).executeTakeFirst();
            assert.equal(row?.s, s);
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  void it('a deferred write is seen by the next statement and committed with the transaction', async () => {
    await withTestService(async ({ ctx }) => {
      const db = ctx.db as AnyDb;
      await scratchTable(db);
      const seen = await db.transaction().execute(async (trx) => {
        await deferWrite(trx, trx.insertInto('wb_test').values({ id: 1n, s: 'one' }));
        await deferWrite(trx, trx.updateTable('wb_test').set({ s: 'uno' }).where('id', '=', 1n));
        return trx.selectFrom('wb_test').select('s').where('id', '=', 1n).executeTakeFirst();
      });
      assert.equal(seen?.s, 'uno');
      await db.transaction().execute(async (trx) => {
        await deferWrite(trx, trx.insertInto('wb_test').values({ id: 2n, s: 'two' }));
      });
      const rows = await db.selectFrom('wb_test').select(['id', 's']).orderBy('id').execute();
      assert.deepEqual(rows, [
        { id: 1n, s: 'uno' },
        { id: 2n, s: 'two' },
      ]);
    });
  });

  void it("a deferred write's error aborts its transaction: raised by the next statement or the commit, nothing kept", async () => {
    await withTestService(async ({ ctx }) => {
      const db = ctx.db as AnyDb;
      await scratchTable(db);
      await assert.rejects(
        db.transaction().execute(async (trx) => {
          await deferWrite(trx, trx.insertInto('wb_test').values({ id: 5n, s: 'ok' }));
          await deferWrite(trx, trx.insertInto('wb_test').values({ id: -1n, s: 'breaks the check' }));
          await trx.selectFrom('wb_test').selectAll().execute();
        }),
        (e: { code?: string }) => e.code === '23514',
      );
      await assert.rejects(
        db.transaction().execute(async (trx) => {
          await deferWrite(trx, trx.insertInto('wb_test').values({ id: 6n, s: 'ok' }));
          await deferWrite(trx, trx.insertInto('wb_test').values({ id: 6n, s: 'duplicate' }));
        }),
        (e: { code?: string }) => e.code === '23505',
      );
      // A thrown callback rolls back what it deferred, sent or not.
      await assert.rejects(
        db.transaction().execute(async (trx) => {
          await deferWrite(trx, trx.insertInto('wb_test').values({ id: 7n, s: 'never' }));
          throw new Error('callback failed');
        }),
        /callback failed/,
      );
      assert.deepEqual(await db.selectFrom('wb_test').selectAll().execute(), []);
      // The connection is clean afterwards.
      await db.transaction().execute(async (trx) => {
        await deferWrite(trx, trx.insertInto('wb_test').values({ id: 8n, s: 'after' }));
      });
      assert.equal((await db.selectFrom('wb_test').selectAll().execute()).length, 1);
    });
  });

  void it('outside a transaction a deferred write runs at once', async () => {
    await withTestService(async ({ ctx }) => {
      const db = ctx.db as AnyDb;
      await scratchTable(db);
      await deferWrite(db, db.insertInto('wb_test').values({ id: 9n, s: 'now' }));
      assert.equal((await db.selectFrom('wb_test').selectAll().execute()).length, 1);
    });
  });
});

void describe('together', () => {
  void it('runs independent statements in one round trip and answers each one its rows, in or out of a transaction', async () => {
    await withTestService(async ({ ctx }) => {
      const db = ctx.db as AnyDb;
      await scratchTable(db);
      const [a, b] = await db.transaction().execute(async (trx) => {
        await deferWrite(trx, trx.insertInto('wb_test').values({ id: 1n, s: 'x' }));
        return together(trx, [
          trx.selectFrom('wb_test').select('s').where('id', '=', 1n),
          sql<{ n: number }>`select 2::int4 as n`.compile(trx),
        ]);
      });
      assert.deepEqual(a, [{ s: 'x' }]);
      assert.deepEqual(b, [{ n: 2 }]);
      const [c, d] = await together(db, [
        db.selectFrom('wb_test').select('id'),
        db.selectFrom('wb_test').select('s'),
      ]);
      assert.deepEqual([c, d], [[{ id: 1n }], [{ s: 'x' }]]);
    });
  });

  void it('sends nothing for a null in place of a statement and answers it no rows, even last', async () => {
    await withTestService(async ({ ctx }) => {
      const db = ctx.db as AnyDb;
      await scratchTable(db);
      const sent: string[] = [];
      const [a, none, b, last] = await db.transaction().execute(async (trx) => {
        const counting = {
          executeQuery: (q: CompiledQuery) => (sent.push(q.sql), trx.executeQuery(q)),
        };
        await deferWrite(trx, trx.insertInto('wb_test').values({ id: 1n, s: 'x' }));
        return together(counting, [
          trx.selectFrom('wb_test').select('s'),
          null,
          sql<{ n: number }>`select 2::int4 as n`.compile(trx),
          null,
        ]);
      });
      assert.deepEqual([a, none, b, last], [[{ s: 'x' }], [], [{ n: 2 }], []]);
      assert.equal(sent.length, 2);
      const nothing: string[] = [];
      const counting = { executeQuery: (q: CompiledQuery) => (nothing.push(q.sql), db.executeQuery(q)) };
      assert.deepEqual(await together(counting, [null, null]), [[], []]);
      assert.deepEqual(nothing, []);
    });
  });
});

void describe('prepared statements', () => {
  // One connection (poolSize 1), so that what one transaction prepared, the next one sees.
  const prepared = async (db: AnyDb) =>
    (await sql<{ name: string }>`select name from pg_prepared_statements order by name`.execute(db)).rows.map(
      (r) => r.name,
    );
  const write = (trx: AnyDb, id: bigint) =>
    deferWrite(trx, trx.insertInto('wb_test').values({ id, s: `s${id}` }));
  const read = (trx: AnyDb, s: string) => trx.selectFrom('wb_test').select('id').where('s', '=', s).execute();

  void it('a transaction that asks for them runs its statements as EXECUTE, each prepared once per connection', async () => {
    await withTestService({ poolSize: 1 }, async ({ ctx }) => {
      const db = ctx.db as AnyDb;
      await scratchTable(db);
      const run = (id: bigint) =>
        db.transaction().execute(async (trx) => {
          await trx.executeQuery(PREPARED_STATEMENTS);
          await write(trx, id);
          const [rows, settings] = await together(trx, [
            trx.selectFrom('wb_test').select(['id', 's']).where('id', '=', id),
            sql<{ plans: string; seqscan: string }>`select current_setting('plan_cache_mode') as plans,
              current_setting('enable_seqscan') as seqscan`.compile(trx),
          ]);
          return { rows, settings, names: await prepared(trx) };
        });
      const a = await run(1n);
      const b = await run(2n);
      assert.deepEqual(a.rows, [{ id: 1n, s: 's1' }]);
      assert.deepEqual(b.rows, [{ id: 2n, s: 's2' }]);
      assert.deepEqual(a.settings, [{ plans: 'force_generic_plan', seqscan: 'off' }]);
      // The insert and the select, prepared by the first transaction and executed by both.
      assert.equal(a.names.length, 2);
      assert.deepEqual(b.names, a.names);
      // The settings were the transaction's own; a transaction that does not ask prepares nothing.
      const plain = await db.transaction().execute(async (trx) => {
        await write(trx, 3n);
        const [settings] = await together(trx, [
          sql<{ seqscan: string }>`select current_setting('enable_seqscan') as seqscan`.compile(trx),
        ]);
        return { settings, names: await prepared(trx) };
      });
      assert.deepEqual(plain, { settings: [{ seqscan: 'on' }], names: a.names });
    });
  });

  void it('after a text that carried a PREPARE fails, the connection prepares again and frees what it left', async () => {
    await withTestService({ poolSize: 1 }, async ({ ctx }) => {
      const db = ctx.db as AnyDb;
      await scratchTable(db);
      const prepare = async <T>(fn: (trx: AnyDb) => Promise<T>) =>
        db.transaction().execute(async (trx) => {
          await trx.executeQuery(PREPARED_STATEMENTS);
          return fn(trx);
        });
      await prepare((trx) => write(trx, 1n).then(() => read(trx, 's1')));
      const byId = (trx: AnyDb, id: bigint) =>
        trx.selectFrom('wb_test').select('s').where('id', '=', id).execute();
      const rename = (trx: AnyDb, s: string) =>
        deferWrite(trx, trx.updateTable('wb_test').set({ s }).where('id', '=', 1n));
      // The insert fails (id > 0) in front of byId's PREPARE, which never runs …
      await assert.rejects(prepare((trx) => write(trx, -1n).then(() => byId(trx, 1n))));
      assert.deepEqual(await prepare((trx) => byId(trx, 1n)), [{ s: 's1' }]);
      // … and here after rename's PREPARE, which did.
      await assert.rejects(
        prepare(async (trx) => {
          await rename(trx, 'y');
          await write(trx, -2n);
          return read(trx, 'x');
        }),
      );
      const names = await prepare(async (trx) => {
        await rename(trx, 's1b');
        assert.deepEqual(await byId(trx, 1n), [{ s: 's1b' }]);
        await write(trx, 4n);
        return prepared(trx);
      });
      // What the failed texts left was deallocated: only this transaction's three statements remain.
      assert.equal(names.length, 3, names.join(', '));
      assert.deepEqual(
        (await db.selectFrom('wb_test').select('id').orderBy('id').execute()).map((r) => r.id),
        [1n, 4n],
      );
    });
  });

  void it('a statement prepared before its table changed is prepared again, its transaction run again', async () => {
    await withTestService({ poolSize: 1 }, async ({ ctx }) => {
      const db = ctx.db as AnyDb;
      await scratchTable(db);
      await db.insertInto('wb_test').values({ id: 1n, s: 'a' }).execute();
      let runs = 0;
      const all = () =>
        inTransaction(
          ctx.db,
          (trx) => (runs++, (trx as AnyDb).selectFrom('wb_test').selectAll().where('id', '>', 0n).execute()),
          PREPARED,
        );
      assert.deepEqual(await all(), [{ id: 1n, s: 'a' }]);
      // A migration beside the running server: `select *` now has another column.
      await sql`alter table wb_test add column n int4 not null default 7`.execute(db);
      runs = 0;
      assert.deepEqual(await all(), [{ id: 1n, s: 'a', n: 7 }]);
      assert.equal(runs, 2);
    });
  });
});

void describe('prefetch', () => {
  void it('queues reads behind the writes before them; the first rows() sends them all', async () => {
    await withTestService(async ({ ctx }) => {
      const db = ctx.db as AnyDb;
      await scratchTable(db);
      const [before, after, count] = await db.transaction().execute(async (trx) => {
        const b = await prefetch(trx, trx.selectFrom('wb_test').select('s'));
        await deferWrite(trx, trx.insertInto('wb_test').values({ id: 1n, s: 'x' }));
        const a = await prefetch(trx, trx.selectFrom('wb_test').select('s'));
        const c = await prefetch(
          trx,
          sql<{ n: bigint }>`select count(*)::int8 as n from wb_test`.compile(trx),
        );
        return [await b.rows(), await a.rows(), await c.rows()];
      });
      assert.deepEqual(before, []);
      assert.deepEqual(after, [{ s: 'x' }]);
      assert.deepEqual(count, [{ n: 1n }]);
      const outside = await prefetch(db, db.selectFrom('wb_test').select('id'));
      assert.deepEqual(await outside.rows(), [{ id: 1n }]);
    });
  });
});

void describe('large statements', () => {
  void it('go with bound parameters after what waits, in order, deferred or not', async () => {
    await withTestService(async ({ ctx }) => {
      const db = ctx.db as AnyDb;
      await scratchTable(db);
      const rows = Array.from({ length: MAX_INLINE_PARAMETERS }, (_, i) => ({
        id: BigInt(i + 2),
        s: `r${i}`,
      }));
      const count = await db.transaction().execute(async (trx) => {
        await deferWrite(trx, trx.insertInto('wb_test').values({ id: 1n, s: 'first' }));
        await deferWrite(trx, trx.insertInto('wb_test').values(rows)); // 2 × 400 values: not inlined
        await deferWrite(trx, trx.updateTable('wb_test').set({ s: 'last' }).where('id', '=', 2n));
        return trx
          .selectFrom('wb_test')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirst();
      });
      assert.equal(Number(count?.n), MAX_INLINE_PARAMETERS + 1);
      const last = await db.selectFrom('wb_test').select('s').where('id', '=', 2n).executeTakeFirst();
      assert.equal(last?.s, 'last');
    });
  });

  void it('so do statements with long text values, in order', async () => {
    await withTestService(async ({ ctx }) => {
      const db = ctx.db as AnyDb;
      await scratchTable(db);
      const long = `it's ${'x'.repeat(MAX_INLINE_CHARS)}`;
      const got = await db.transaction().execute(async (trx) => {
        await deferWrite(trx, trx.insertInto('wb_test').values({ id: 1n, s: 'first' }));
        await deferWrite(trx, trx.updateTable('wb_test').set({ s: long }).where('id', '=', 1n)); // not inlined
        await deferWrite(trx, trx.insertInto('wb_test').values({ id: 2n, s: 'last' }));
        return trx.selectFrom('wb_test').select(['id', 's']).orderBy('id').execute();
      });
      assert.deepEqual(got, [
        { id: 1n, s: long },
        { id: 2n, s: 'last' },
      ]);
    });
  });
});
