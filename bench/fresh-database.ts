// A scratch database for a bench tool: created through an admin connection (DATABASE_URL),
// dropped when the tool is done.

import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** Creates <prefix>_<random> through the admin URL; returns its URL and a drop function. */
export async function freshDatabase(
  adminUrl: string,
  prefix = 'pp_bench',
): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    drop: async () => {
      // BENCH_KEEP_DB=1 leaves the database behind, to look at its rows and plans afterwards.
      if (process.env.BENCH_KEEP_DB === '1') return console.log(`kept database ${name}`);
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}
