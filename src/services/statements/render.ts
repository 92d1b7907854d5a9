import type { Group } from '../../domain/config/group.ts';
import { formatter, resolveLocale } from './format.ts';
import type { Statement } from './statement.ts';
import { selectTemplate } from './templates/index.ts';

// Renders a statement as HTML with the template of the brand it is shown for, in the asked
// locale (or the template's own).

export function renderStatementHtml(
  s: Statement,
  group: Group,
  opts: { brand_id?: string | undefined; locale?: string | undefined },
): { html: string; template: string; locale: string } {
  const template = selectTemplate(opts.brand_id, opts.locale);
  const locale = resolveLocale(opts.locale, template.locale);
  const fmt = formatter(locale);
  const brandName = (id: string | null) => (id === null ? group.id : (group.brands.get(id)?.name ?? id));
  return { html: template.render(s, { fmt, brandName }).value, template: template.key, locale };
}
