// Exact arithmetic for rates, point values and points. No amount ever passes through a binary
// float (invariant 7): decimal strings parse to rationals over bigint, and results round once,
// at the end, by an explicit mode.

export interface Ratio {
  readonly num: bigint;
  readonly den: bigint; // always > 0
}

export type RoundingMode = 'floor' | 'ceil' | 'half_up' | 'half_even' | 'trunc';

const DECIMAL_RE = /^-?\d{1,30}(\.\d{1,18})?$/;

export function isDecimalString(s: string): boolean {
  return DECIMAL_RE.test(s);
}

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}

export function ratio(num: bigint, den: bigint = 1n): Ratio {
  if (den === 0n) throw new RangeError('ratio: zero denominator');
  if (den < 0n) [num, den] = [-num, -den];
  const g = gcd(num, den);
  return g > 1n ? { num: num / g, den: den / g } : { num, den };
}

/** Parses "1.25", "-0.005", "3" exactly. Throws on anything else (exponents, NaN, spaces). */
export function parseDecimal(s: string): Ratio {
  if (!DECIMAL_RE.test(s)) throw new RangeError(`not a decimal string: ${JSON.stringify(s)}`);
  const negative = s.startsWith('-');
  const body = negative ? s.slice(1) : s;
  const [whole = '0', frac = ''] = body.split('.');
  const num = BigInt(whole + frac) * (negative ? -1n : 1n);
  return ratio(num, 10n ** BigInt(frac.length));
}

export const ZERO: Ratio = { num: 0n, den: 1n };
export const ONE: Ratio = { num: 1n, den: 1n };

export const add = (a: Ratio, b: Ratio): Ratio => ratio(a.num * b.den + b.num * a.den, a.den * b.den);
export const sub = (a: Ratio, b: Ratio): Ratio => ratio(a.num * b.den - b.num * a.den, a.den * b.den);
export const mul = (a: Ratio, b: Ratio): Ratio => ratio(a.num * b.num, a.den * b.den);
export function div(a: Ratio, b: Ratio): Ratio {
  if (b.num === 0n) throw new RangeError('ratio: division by zero');
  return ratio(a.num * b.den, a.den * b.num);
}
export const cmp = (a: Ratio, b: Ratio): number => {
  const d = a.num * b.den - b.num * a.den;
  return d < 0n ? -1 : d > 0n ? 1 : 0;
};
export const min = (a: Ratio, b: Ratio): Ratio => (cmp(a, b) <= 0 ? a : b);
export const max = (a: Ratio, b: Ratio): Ratio => (cmp(a, b) >= 0 ? a : b);
export const fromInt = (n: bigint | number): Ratio => ratio(BigInt(n));

/** Rounds a ratio to an integer by the given mode. */
export function roundRatio(r: Ratio, mode: RoundingMode): bigint {
  const { num, den } = r;
  const q = num / den; // truncates toward zero
  const rem = num % den;
  if (rem === 0n) return q;
  const floor = num < 0n ? q - 1n : q;
  switch (mode) {
    case 'trunc':
      return q;
    case 'floor':
      return floor;
    case 'ceil':
      return floor + 1n;
    case 'half_up':
    case 'half_even': {
      const twice = 2n * (num - floor * den); // 2 × fractional part, scaled by den
      if (twice < den) return floor;
      if (twice > den) return floor + 1n;
      if (mode === 'half_up') return floor + 1n;
      return floor % 2n === 0n ? floor : floor + 1n;
    }
  }
}

/** Renders a ratio as a decimal string with at most `places` decimals (rounded half-even), trailing zeros cut. */
export function formatRatio(r: Ratio, places = 10): string {
  const scale = 10n ** BigInt(places);
  const scaled = roundRatio(mul(r, ratio(scale)), 'half_even');
  return formatScaled(scaled, places);
}

/** Renders an integer holding `places` implied decimals: (16837500n, 6) → "16.8375". */
export function formatScaled(value: bigint, places: number): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const scale = 10n ** BigInt(places);
  const whole = abs / scale;
  let frac = places > 0 ? (abs % scale).toString().padStart(places, '0') : '';
  frac = frac.replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`;
}
