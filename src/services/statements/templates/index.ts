import { defaultTemplate } from './default.ts';
import { harborTemplate } from './harbor.ts';
import type { StatementTemplate } from './layout.ts';
import { northwindTemplate } from './northwind.ts';

// Statement templates per brand and locale. Lookup: "<brand>:<locale>", then "<brand>", then
// the default. Each entry names the locale it formats numbers in unless the caller asks for one.

export interface TemplateEntry {
  readonly key: string;
  readonly locale: string;
  readonly render: StatementTemplate;
}

const TEMPLATES: ReadonlyMap<string, TemplateEntry> = new Map(
  [
    { key: 'default', locale: 'en-US', render: defaultTemplate },
    { key: 'northwind', locale: 'en-US', render: northwindTemplate },
    { key: 'harbor', locale: 'de-DE', render: harborTemplate },
    { key: 'harbor:en-US', locale: 'en-US', render: defaultTemplate },
  ].map((t) => [t.key, t]),
);

export function selectTemplate(brand_id: string | undefined, locale: string | undefined): TemplateEntry {
  const candidates = [brand_id && locale ? `${brand_id}:${locale}` : null, brand_id ?? null, 'default'];
  for (const key of candidates) {
    const t = key ? TEMPLATES.get(key) : undefined;
    if (t) return t;
  }
  return TEMPLATES.get('default')!;
}

export type { StatementTemplate };
