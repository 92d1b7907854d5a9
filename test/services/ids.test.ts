import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { newId } from '../../src/services/ids.ts';

// Ids come from a pool of random bytes refilled 4 KiB at a time: across refills they keep their
// shape and never repeat.
void describe('newId', () => {
  void it('gives distinct prefixed 80-bit hex ids across many pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5_000; i++) {
      const id = newId('rdm');
      assert.match(id, /^rdm_[0-9a-f]{20}$/);
      seen.add(id);
    }
    assert.equal(seen.size, 5_000);
  });
});
