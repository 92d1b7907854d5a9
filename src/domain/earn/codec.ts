import { formatRatio, parseDecimal, ratio, type Ratio } from '../decimal.ts';

// Exact text forms for what the explanation stores. Ratios keep "num/den" because an fx-derived
// amount (1347 × 1/1.08) has no finite decimal form.

export const ratioToJson = (r: Ratio): string => (r.den === 1n ? `${r.num}` : `${r.num}/${r.den}`);

/** Reads "num/den", an integer, or a decimal ("0.75": how quantities are stored). */
export function ratioFromJson(s: string): Ratio {
  const m = /^(-?\d+)(?:\/(\d+))?$/.exec(s);
  if (m) return ratio(BigInt(m[1]!), BigInt(m[2] ?? '1'));
  if (/^-?\d+\.\d+$/.test(s)) return parseDecimal(s);
  throw new RangeError(`not a ratio: ${JSON.stringify(s)}`);
}

/**
 * A JSON quantity → exact ratio. A number's shortest rendering is what the sender wrote, so a
 * decimal quantity (0.75 kg) parses exactly. Throws on non-finite or exponent forms.
 */
export function quantityRatio(q: number): Ratio {
  if (Number.isSafeInteger(q)) return ratio(BigInt(q));
  if (!Number.isFinite(q)) throw new RangeError(`quantity is not finite: ${q}`);
  return parseDecimal(String(q));
}

/**
 * A finite decimal (a quantity, a multiplier: integers or sums/maxima of parsed decimals) as an
 * exact decimal string. The integer case skips formatRatio's scaling, which the hot path feels.
 */
export const decimalToJson = (r: Ratio): string => (r.den === 1n ? `${r.num}` : formatRatio(r, 18));

export const quantityToJson = decimalToJson;

export const quantityToNumber = (r: Ratio): number => Number(decimalToJson(r));
