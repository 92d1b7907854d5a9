import { currencyExponent } from '../../domain/config/fx.ts';
import { formatScaled } from '../../domain/decimal.ts';
import { pt4ToString, type Pt4 } from '../../domain/points.ts';

// Locale formatting for member-facing documents. Amounts stay exact up to the formatter: money
// is integer minor units turned into an exact decimal string (formatScaled), points are pt4
// turned into their exact decimal string, and Intl.NumberFormat formats that string (ICU reads
// a numeric string as an exact decimal, so no binary float ever holds an amount). Formatters
// are cached per locale and options: constructing one costs far more than using it.

const cache = new Map<string, Intl.NumberFormat>();

function numberFormat(locale: string, opts: Intl.NumberFormatOptions): Intl.NumberFormat {
  const key = `${locale}\u0000${JSON.stringify(opts)}`;
  let f = cache.get(key);
  if (!f) {
    f = new Intl.NumberFormat(locale, opts);
    cache.set(key, f);
  }
  return f;
}

/** Intl formats an exact decimal string exactly (Intl.NumberFormat v3); the lib typing lags. */
const formatDecimal = (f: Intl.NumberFormat, decimal: string): string =>
  f.format(decimal as unknown as number);

export interface Formatter {
  readonly locale: string;
  points(p: Pt4, signed?: boolean): string;
  money(amount_minor: bigint, currency: string, signed?: boolean): string;
  date(d: Date): string;
}

/** The locale if Intl knows it, else en-US. */
export function resolveLocale(requested: string | undefined, fallback: string): string {
  for (const candidate of [requested, fallback]) {
    if (!candidate) continue;
    try {
      const [canonical] = Intl.getCanonicalLocales(candidate);
      if (canonical && Intl.NumberFormat.supportedLocalesOf([canonical]).length > 0) return canonical;
    } catch {
      // not a BCP 47 tag: try the next candidate
    }
  }
  return 'en-US';
}

export function formatter(locale: string): Formatter {
  const dates = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeZone: 'UTC' });
  return {
    locale,
    points: (p, signed = false) =>
      formatDecimal(
        numberFormat(locale, { maximumFractionDigits: 4, signDisplay: signed ? 'exceptZero' : 'auto' }),
        pt4ToString(p),
      ),
    money: (amount_minor, currency, signed = false) => {
      const exponent = currencyExponent(currency);
      const f = numberFormat(locale, {
        style: 'currency',
        currency,
        minimumFractionDigits: exponent,
        maximumFractionDigits: exponent,
        signDisplay: signed ? 'exceptZero' : 'auto',
      });
      return formatDecimal(f, formatScaled(amount_minor, exponent));
    },
    date: (d) => dates.format(d),
  };
}
