// A configuration change may not strand what members hold: a program with members' points stays,
// in its currency (the audit of 2026-12-01 found that removing one was accepted and every later
// balance read of its members answered 500).

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import type { Config } from '../../src/domain/config/schema.ts';
import { demoConfigDoc } from '../fixtures/config.ts';
import { Api, shirt, uid, type Json } from './lifecycle-helpers.ts';

const clock = new ManualClock('2026-03-10T12:00:00.000Z');
const api = Api.forTests(clock);

/** The demo document with a spare program `spare-points` (nobody's) and the change applied. */
function doc(change: (d: Config) => void = () => {}): Config {
  const d = demoConfigDoc();
  const stars = d.programs.find((p) => p.id === 'northwind-stars')!;
  d.programs.push({ ...stars, id: 'spare-points', rules: [], tiers: [] });
  change(d);
  return d;
}

async function put(d: Config) {
  return api.inject('PUT', '/v1/config', d);
}

void describe('a configuration change keeps the programs members hold points in', () => {
  void it('refuses to remove such a program or change its currency, naming where; allows the rest', async () => {
    assert.equal((await put(doc())).statusCode, 200);
    const m = uid('mbr_hist');
    await api.purchase(m, 'store_atl_012', [shirt(10_000)]);
    const versions = (await api.get('/v1/config/versions')).versions;

    // northwind moves to the spare program and northwind-stars is dropped.
    const removed = await put(
      doc((d) => {
        d.brands.find((b) => b.id === 'northwind')!.program = 'spare-points';
        d.programs = d.programs.filter((p) => p.id !== 'northwind-stars');
      }),
    );
    assert.equal(removed.statusCode, 422, removed.body);
    const problems = removed.json<Json>().error.details.problems as Json[];
    assert.deepEqual(
      problems.map((p) => p.path),
      ['/programs'],
    );
    assert.match(problems[0]!.message, /northwind-stars/);

    const recurrency = await put(
      doc((d) => {
        d.programs.find((p) => p.id === 'northwind-stars')!.currency = 'EUR';
      }),
    );
    assert.equal(recurrency.statusCode, 422, recurrency.body);
    const at = doc().programs.findIndex((p) => p.id === 'northwind-stars');
    assert.deepEqual(
      (recurrency.json<Json>().error.details.problems as Json[]).map((p) => p.path),
      [`/programs/${at}/currency`],
    );

    // Refused changes stored nothing, and the member's points still read.
    assert.deepEqual((await api.get('/v1/config/versions')).versions, versions);
    const b = await api.get(`/v1/members/${m}/balances`);
    assert.equal(b.programs.find((p: Json) => p.program_id === 'northwind-stars').available, 50);

    // Nobody holds spare-points: it may go, and northwind-stars may take new rules.
    const fine = await put(
      doc((d) => {
        d.programs = d.programs.filter((p) => p.id !== 'spare-points');
        d.programs.find((p) => p.id === 'northwind-stars')!.earn.points = '7';
      }),
    );
    assert.equal(fine.statusCode, 200, fine.body);
  });
});
