import { PGlite } from '@electric-sql/pglite';
import { mkdtempSync } from 'node:fs';
for (const dir of ['memory://', mkdtempSync('/tmp/ppx/d-')]) {
  const db = new PGlite(dir);
  await db.waitReady;
  await db.query('create table t (id serial primary key, v int)');
  await db.query('create table c (id int primary key, n int)'); await db.query('insert into c values (1,0)');
  let s = performance.now();
  for (let i = 0; i < 500; i++) await db.query('select 1');
  console.log(dir, 'select 1', ((performance.now() - s) / 500).toFixed(3), 'ms');
  s = performance.now();
  for (let i = 0; i < 500; i++) await db.query('select * from c where id = $1', [1]);
  console.log(dir, 'select param', ((performance.now() - s) / 500).toFixed(3), 'ms');
  s = performance.now();
  for (let i = 0; i < 300; i++) await db.transaction(async (tx) => { await tx.query('insert into t (v) values ($1)', [i]); await tx.query('update c set n = n + 1 where id = 1'); });
  console.log(dir, 'tx', ((performance.now() - s) / 300).toFixed(3), 'ms');
  s = performance.now();
  for (let i = 0; i < 300; i++) await db.query('insert into t (v) values ($1)', [i]);
  console.log(dir, 'autocommit insert', ((performance.now() - s) / 300).toFixed(3), 'ms');
  await db.close();
}
{
  const db = new PGlite(mkdtempSync('/tmp/ppx/e-'));
  await db.query('create table t (id serial primary key, v int)');
  await db.query('create table c (id int primary key, n int)'); await db.query('insert into c select g, 0 from generate_series(0,15) g');
  for (const conc of [1, 16, 1, 16]) {
    let n = 0; const s = performance.now();
    await Promise.all(Array.from({ length: conc }, async (_, c) => { while (performance.now() - s < 3000) { n++; await db.transaction(async (tx) => { await tx.query('insert into t (v) values ($1)', [c]); await tx.query('update c set n = n + 1 where id = $1', [c]); }); } }));
    console.log('conc', conc, (n / ((performance.now() - s) / 1000)).toFixed(0), 'tx/s');
  }
}
