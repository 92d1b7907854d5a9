// The bench's group: the demo group (test/fixtures/config.ts) plus two more brands with their own
// programs, so a group redemption can span five brand programs (and the default program).

import type { Config } from '../src/domain/config/schema.ts';
import { demoConfigDoc } from '../test/fixtures/config.ts';

/** The five brand programs and the brand issuing each, for group-redemption seeding. */
export const BRAND_PROGRAMS: readonly { program_id: string; brand_id: string }[] = [
  { program_id: 'northwind-stars', brand_id: 'northwind' },
  { program_id: 'harbor-rewards', brand_id: 'harbor' },
  { program_id: 'summit-miles', brand_id: 'summit' },
  { program_id: 'cedar-points', brand_id: 'cedar' },
  { program_id: 'delta-club', brand_id: 'delta' },
];

export const DEFAULT_PROGRAM = 'acme-points';

export function benchConfigDoc(): Config {
  const doc = demoConfigDoc();
  return {
    ...doc,
    brands: [
      ...doc.brands,
      { id: 'cedar', name: 'Cedar Home', currency: 'USD', program: 'cedar-points' },
      { id: 'delta', name: 'Delta Sports', currency: 'EUR', program: 'delta-club' },
    ],
    stores: [
      ...doc.stores,
      { id: 'store_cedar_001', brand: 'cedar', channel: 'in_store' },
      { id: 'store_delta_001', brand: 'delta', channel: 'in_store' },
    ],
    programs: [
      ...doc.programs,
      {
        id: 'cedar-points',
        currency: 'USD',
        point_value: '0.01',
        earn: { points: '1', per_amount_minor: 100 },
        rounding: 'floor',
        expiry: { kind: 'rolling', days: 365 },
      },
      {
        id: 'delta-club',
        currency: 'EUR',
        point_value: '0.01',
        earn: { points: '2', per_amount_minor: 100 },
        rounding: 'floor',
        expiry: { kind: 'rolling', days: 540 },
        settlement: { reimbursement_rate: '0.95' },
      },
    ],
  };
}
