// RFC 3339 timestamps, strictly. Date.parse alone rolls impossible dates over ("2026-11-31" is
// read as December 1st), which would book an event or start a rule on a day nobody wrote.

// RFC 3339 (section 5.6) lets T and Z be written in lower case; every instant here reads both.
export const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

const daysIn = (year: number, month: number): number =>
  month === 2
    ? year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
      ? 29
      : 28
    : [4, 6, 9, 11].includes(month)
      ? 30
      : 31;

/** Epoch milliseconds of an RFC 3339 timestamp, or null when it is malformed or names no real instant. */
export function parseRfc3339(s: string): number | null {
  const m = RFC3339.exec(s);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const offsetHours = m[8] === undefined ? 0 : Number(m[8]);
  const offsetMinutes = m[9] === undefined ? 0 : Number(m[9]);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return null;
  // Leap seconds (:60) are refused: nothing downstream can represent them.
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return null;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? null : ms;
}

export const isRfc3339 = (s: string): boolean => parseRfc3339(s) !== null;

// The earliest instant anything may name: 1970-01-01T00:00:00Z. RFC 3339 allows year 0000,
// which PostgreSQL cannot store, and nothing in a ledger, its rates or its configuration
// predates the Unix epoch, so an earlier instant can only be a mistake.
export const EARLIEST_INSTANT_MS = 0;
export const EARLIEST_INSTANT = new Date(EARLIEST_INSTANT_MS).toISOString();
