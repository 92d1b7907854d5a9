// Escaping for the HTML statement. Templates build markup only through the `markup` tag: every
// interpolated value is escaped unless it is already SafeHtml (the output of another `markup`
// call), so no member-controlled text (a note, an id) can inject markup. (Not named `html`:
// Prettier would reformat the whitespace inside templates with that tag.)

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);

function piece(v: unknown): string {
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(piece).join('');
  if (v === null || v === undefined || v === false) return '';
  if (typeof v === 'string') return escapeHtml(v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return escapeHtml(String(v));
  throw new TypeError('markup: only strings, numbers, SafeHtml and arrays of them can be interpolated');
}

/** Tagged template: markup`<td>${text}</td>` escapes `text`. */
export function markup(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += piece(values[i]) + (strings[i + 1] ?? '');
  return new SafeHtml(out);
}
