// The settings every PostgreSQL connection of the service starts with (store/connect.ts): JIT off,
// so a statement costed high on stale statistics is not compiled for 30–60 ms before it runs. The
// operator's own settings come after ours and win: the URL's `options`, then PGOPTIONS.
// PostgreSQL only: PGlite has no JIT.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { openStore } from '../../src/store/connect.ts';
import { createTestService, isPostgres, type TestService } from '../helpers/store.ts';

const show = async (t: { ctx: { db: TestService['ctx']['db'] } }, name: 'jit' | 'work_mem') =>
  (await sql<{ v: string }>`select current_setting(${name}) as v`.execute(t.ctx.db)).rows[0]!.v;

void describe('PostgreSQL session settings', { skip: !isPostgres() && 'PostgreSQL only' }, () => {
  let t: TestService;
  before(async () => {
    t = await createTestService();
  });
  after(() => t.close());

  void it('every connection of the pool has JIT off', async () => {
    // Several at once, so the pool opens more than one connection.
    const settings = await Promise.all(
      Array.from({ length: 4 }, () =>
        t.ctx.db.connection().execute(async (c) => {
          await sql`select pg_sleep(0.05)`.execute(c);
          return (await sql<{ v: string }>`select current_setting('jit') as v`.execute(c)).rows[0]!.v;
        }),
      ),
    );
    assert.deepEqual(settings, ['off', 'off', 'off', 'off']);
  });

  void it("keeps the operator's PGOPTIONS, which win over ours", async () => {
    const saved = process.env.PGOPTIONS;
    process.env.PGOPTIONS = '-c jit=on -c work_mem=8MB';
    try {
      const store = await openStore({ databaseUrl: process.env.DATABASE_URL!, poolSize: 1 });
      try {
        const s = { ctx: { db: store.db } };
        assert.equal(await show(s, 'jit'), 'on');
        assert.equal(await show(s, 'work_mem'), '8MB');
      } finally {
        await store.close();
      }
    } finally {
      if (saved === undefined) delete process.env.PGOPTIONS;
      else process.env.PGOPTIONS = saved;
    }
  });

  void it("adds the URL's own options after ours instead of losing ours to them", async () => {
    const withOptions = (options: string) => {
      const url = new URL(process.env.DATABASE_URL!);
      url.searchParams.set('options', options);
      return url.toString();
    };
    const settings = async (databaseUrl: string) => {
      const store = await openStore({ databaseUrl, poolSize: 1 });
      try {
        const s = { ctx: { db: store.db } };
        return [await show(s, 'jit'), await show(s, 'work_mem')];
      } finally {
        await store.close();
      }
    };
    assert.deepEqual(await settings(withOptions('-c work_mem=16MB')), ['off', '16MB']);
    assert.equal((await settings(withOptions('-c jit=on')))[0], 'on');
  });
});
