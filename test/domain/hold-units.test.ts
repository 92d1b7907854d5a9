import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parseDecimal, ratio } from '../../src/domain/decimal.ts';
import { unitsAtHold } from '../../src/domain/lots/hold-units.ts';

const whole = () => 'whole' as const;
const P = 10_000n; // one point in pt4

void describe('unitsAtHold: the conversion a hold was placed at', () => {
  void it('values each held program by what its points were worth, and the asked-for points by the request', () => {
    // 296.2963 harbor points (0.0054 USD each, the last lot rounded up) held for 160 default
    // points (0.01 each): worth 1.60000002, of which 0.00000002 overpaid.
    const units = unitsAtHold(
      [
        { program_id: 'harbor-rewards', points_pt4: 1_000_000n, value: parseDecimal('0.54') },
        { program_id: 'harbor-rewards', points_pt4: 1_962_963n, value: parseDecimal('1.06000002') },
      ],
      { unit_program_id: 'acme-points', points_pt4: 160n * P, overpaid_value: parseDecimal('0.00000002') },
      whole,
    )!;
    assert.deepEqual(units.get('harbor-rewards')!.unit_value, parseDecimal('0.0054'));
    assert.deepEqual(units.get('acme-points')!.unit_value, parseDecimal('0.01'));
    assert.equal(units.get('acme-points')!.precision, 'whole');
  });

  void it('keeps a held program’s own unit for the asked-for points', () => {
    const units = unitsAtHold(
      [{ program_id: 'acme-points', points_pt4: 30n * P, value: ratio(30n, 100n) }],
      { unit_program_id: 'acme-points', points_pt4: 30n * P, overpaid_value: ratio(1n, 1000n) },
      whole,
    )!;
    assert.deepEqual(units.get('acme-points')!.unit_value, ratio(1n, 100n));
  });

  void it('is null for a hold recorded without its worth', () => {
    assert.equal(
      unitsAtHold(
        [{ program_id: 'acme-points', points_pt4: 30n * P, value: null }],
        { unit_program_id: 'acme-points', points_pt4: 30n * P, overpaid_value: ratio(0n) },
        whole,
      ),
      null,
    );
  });
});
