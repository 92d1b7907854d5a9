// typedQueryValues (src/api/query-values.ts): query text typed by the route's schema, strictly.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { typedQueryValues } from '../../src/api/query-values.ts';

const schema = {
  properties: {
    limit: { type: 'integer' },
    points: { type: 'number' },
    active: { type: 'boolean' },
    cursor: { type: 'string' },
  },
};

void describe('typedQueryValues', () => {
  void it('types plain decimals and true/false where the schema asks for them', () => {
    assert.deepEqual(
      typedQueryValues(schema, { limit: '10', points: '-2.5', active: 'false', cursor: '123' }),
      { limit: 10, points: -2.5, active: false, cursor: '123' },
    );
  });

  void it('leaves anything else as text, for validation to refuse with the field named', () => {
    const query = { limit: '1e3', points: '', active: '1', other: '5' };
    assert.deepEqual(typedQueryValues(schema, query), query);
    assert.deepEqual(typedQueryValues(schema, { limit: ' 10', active: 'TRUE' }), {
      limit: ' 10',
      active: 'TRUE',
    });
    assert.deepEqual(typedQueryValues(undefined, { limit: '10' }), { limit: '10' });
  });

  void it('returns a new object and leaves the query as it was', () => {
    const query = { limit: '10' };
    assert.deepEqual(typedQueryValues(schema, query), { limit: 10 });
    assert.deepEqual(query, { limit: '10' });
  });
});
