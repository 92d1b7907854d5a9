import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { sql } from 'kysely';
import { jsonArray } from '../../src/store/pg-arrays.ts';
import { createTestService, type TestService } from '../helpers/store.ts';

// jsonArray carries the ledger's entry details (src/ledger/post.ts) as one jsonb[] parameter, and
// every JSON document is full of the characters an array literal must escape (`"`, `\`, braces,
// commas). textArray, intArray and timestampArray are checked in test/api/events-batch-bulk.test.ts.

void describe('jsonArray', () => {
  let t: TestService;
  before(async () => {
    t = await createTestService();
  });
  after(async () => {
    await t?.close();
  });

  // jsonb cannot hold \u0000 in a string, whatever carries it.
  const noNul = (v: unknown) => !JSON.stringify(v).includes('\\u0000');
  const text = fc.oneof(
    fc.string(),
    fc.constantFrom('', 'NULL', 'null', '"', '\\', '\\"', '{}', '{a,b}', ' a ', 'a,b', "it's", 'é€😀'),
  );
  const doc = fc.oneof(
    fc.jsonValue(),
    fc.dictionary(text, fc.oneof(text, fc.integer(), fc.constant(null))),
    fc.array(text),
  );

  void it('sends JSON documents through an array literal unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(doc.filter(noNul), { maxLength: 20 }), async (docs) => {
        const { rows } = await sql<{ docs: string }>`
          select to_jsonb(${jsonArray(docs)}::jsonb[])::text as docs`.execute(t.ctx.db);
        assert.deepEqual(JSON.parse(rows[0]!.docs), JSON.parse(JSON.stringify(docs)));
      }),
      { numRuns: 50 },
    );
  });

  void it('makes undefined SQL NULL and null the JSON null', async () => {
    const { rows } = await sql<{ nulls: boolean[] }>`
      select array(select v is null from unnest(${jsonArray([undefined, null, {}])}::jsonb[]) as u(v)) as nulls`.execute(
      t.ctx.db,
    );
    assert.deepEqual(rows[0]!.nulls, [true, false, false]);
  });
});
