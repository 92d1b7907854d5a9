import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { systemAccount } from '../../src/ledger/accounts.ts';
import type { EntryInput } from '../../src/ledger/entry.ts';
import { postEntries } from '../../src/ledger/post.ts';
import { createTestService, type TestService } from '../helpers/store.ts';

// postEntries sends the details of all its entries as one JSON document joined back to the rows
// by position (src/ledger/post.ts). Property: whatever the documents hold (quotes, backslashes,
// braces, commas, unicode) and however many entries share the statement, each entry's row carries
// its own detail unchanged. Batches big enough to go with bound parameters and small enough to be
// quoted into the transaction's text (store/write-behind.ts) both occur.

void describe('entry details', () => {
  let t: TestService;
  before(async () => {
    t = await createTestService();
  });
  after(async () => {
    await t?.close();
  });

  const text = fc.oneof(
    fc.string(),
    fc.constantFrom(
      '',
      'NULL',
      'null',
      '"',
      '\\',
      '\\"',
      '{}',
      '{a,b}',
      ' a ',
      'a,b',
      "it's",
      "'';--",
      'é€😀',
    ),
  );
  const detail = fc.dictionary(
    text,
    fc.oneof(text, fc.integer(), fc.constant(null), fc.jsonValue(), fc.array(text)),
  );

  const entry = (d: Record<string, unknown>): EntryInput => ({
    kind: 'test',
    at: new Date('2026-05-01T00:00:00Z'),
    detail: d,
    postings: [
      { account: systemAccount('acme-points', 'adjustment', 'group'), amount_pt4: 10_000n },
      { account: systemAccount('acme-points', 'issuance', 'northwind'), amount_pt4: -10_000n },
    ],
  });

  void it('each entry keeps its own detail document, unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.array(detail, { minLength: 1, maxLength: 12 }),
          fc.array(detail, { minLength: 40, maxLength: 120 }),
        ),
        async (details) => {
          const posted = await t.ctx.db.transaction().execute((trx) => postEntries(trx, details.map(entry)));
          const rows = await t.ctx.db
            .selectFrom('entries')
            .select(['id', 'detail'])
            .where(
              'id',
              'in',
              posted.map((p) => p.entry_id),
            )
            .execute();
          const byId = new Map(rows.map((r) => [r.id, r.detail]));
          assert.equal(rows.length, details.length);
          posted.forEach((p, i) =>
            assert.deepEqual(byId.get(p.entry_id), JSON.parse(JSON.stringify(details[i])), `entry ${i}`),
          );
        },
      ),
      { numRuns: 40 },
    );
  });
});
