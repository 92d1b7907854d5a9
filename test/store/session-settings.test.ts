// The settings every PostgreSQL connection of the service starts with (store/connect.ts): JIT off,
// so a statement costed high on stale statistics is not compiled for 30–60 ms before it runs. The
// operator's own settings come after ours and win: the URL's `options`, then PGOPTIONS.
// PostgreSQL only: PGlite has no JIT.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { openStore } from '../../src/store/connect.ts';
import type { DB } from '../../src/store/schema.ts';
import { createTestService, isPostgres, type TestService } from '../helpers/store.ts';

const setting = async (db: Kysely<DB>, name: 'jit' | 'work_mem') =>
  (await sql<{ v: string }>`select current_setting(${name}) as v`.execute(db)).rows[0]!.v;

/** The settings a store opened on this URL gives its connections. */
async function settingsOf(databaseUrl: string): Promise<{ jit: string; work_mem: string }> {
  const store = await openStore({ databaseUrl, poolSize: 1 });
  try {
    return { jit: await setting(store.db, 'jit'), work_mem: await setting(store.db, 'work_mem') };
  } finally {
    await store.close();
  }
}

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
          return setting(c, 'jit');
        }),
      ),
    );
    assert.deepEqual(settings, ['off', 'off', 'off', 'off']);
  });

  void it("keeps the operator's PGOPTIONS, which win over ours", async () => {
    const saved = process.env.PGOPTIONS;
    process.env.PGOPTIONS = '-c jit=on -c work_mem=8MB';
    try {
      assert.deepEqual(await settingsOf(process.env.DATABASE_URL!), { jit: 'on', work_mem: '8MB' });
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
    assert.deepEqual(await settingsOf(withOptions('-c work_mem=16MB')), { jit: 'off', work_mem: '16MB' });
    assert.equal((await settingsOf(withOptions('-c jit=on'))).jit, 'on');
  });
});
