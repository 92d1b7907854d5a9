import type { Formatter } from '../format.ts';
import { markup, type SafeHtml } from '../html.ts';
import { moneyOf } from '../conversions.ts';
import type { Conversion } from '../conversions.ts';
import type { Balance, EarnItem, ProgramStatement, Statement } from '../statement.ts';

// The statement's HTML skeleton, shared by the brand templates: a template supplies its words
// (Labels), its look (Theme) and its locale (through the Formatter). Every figure goes through
// the Formatter (Intl), every text through the escaping `markup` tag.

export interface Labels {
  readonly title: string;
  readonly period: string;
  readonly program: string;
  readonly opening: string;
  readonly closing: string;
  readonly available: string;
  readonly pending: string;
  readonly held: string;
  readonly value: string;
  readonly earned: string;
  readonly redeemed: string;
  readonly transferred: string;
  readonly reversed: string;
  readonly expired: string;
  readonly adjusted: string;
  readonly other: string;
  readonly expiringSoon: string;
  readonly rules: string;
  readonly issuedBy: string;
  readonly brand: string;
  readonly redeemedAt: string;
  readonly conversion: string;
  readonly crossBrand: string;
  readonly transferIn: string;
  readonly transferOut: string;
  readonly reason: string;
  readonly points: string;
  readonly date: string;
  readonly expiresAt: string;
  readonly ties: string;
  readonly nothing: string;
}

export interface Theme {
  readonly accent: string;
  readonly heading: string;
}

export interface TemplateEnv {
  readonly fmt: Formatter;
  readonly brandName: (brand_id: string | null) => string;
}

export type StatementTemplate = (s: Statement, env: TemplateEnv) => SafeHtml;

export function layout(s: Statement, env: TemplateEnv, labels: Labels, theme: Theme): SafeHtml {
  const { fmt } = env;
  return markup`<!doctype html>
<html lang="${fmt.locale}">
<head>
<meta charset="utf-8">
<title>${theme.heading} — ${labels.title}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1, h2 { color: ${theme.accent}; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
td, th { border-bottom: 1px solid #ddd; padding: 0.25rem 0.75rem; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.conversion { font-family: ui-monospace, monospace; }
</style>
</head>
<body>
<header>
<h1>${theme.heading}</h1>
<p class="title">${labels.title} · ${s.member_id}</p>
<p class="period">${labels.period}: ${fmt.date(s.from)} – ${fmt.date(s.to)}</p>
</header>
${s.programs.map((p) => programSection(p, s, env, labels))}
</body>
</html>
`;
}

function balanceRow(label: string, b: Balance, fmt: Formatter): SafeHtml {
  return markup`<tr><th>${label}</th><td class="num">${fmt.points(b.total_pt4)}</td><td class="num">${fmt.points(b.available_pt4)}</td><td class="num">${fmt.points(b.pending_pt4)}</td><td class="num">${fmt.points(b.held_pt4)}</td></tr>`;
}

function programSection(p: ProgramStatement, s: Statement, env: TemplateEnv, l: Labels): SafeHtml {
  const { fmt } = env;
  const movement = (label: string, points: bigint, cls: string) =>
    markup`<tr class="${cls}"><th>${label}</th><td class="num">${fmt.points(points, true)}</td></tr>`;
  return markup`<section class="program" data-program="${p.program_id}">
<h2>${l.program} ${p.program_id}${p.brand_id ? markup` · ${env.brandName(p.brand_id)}` : ''}</h2>
<table class="balances">
<tr><th></th><th class="num">${l.points}</th><th class="num">${l.available}</th><th class="num">${l.pending}</th><th class="num">${l.held}</th></tr>
${balanceRow(l.opening, p.opening, fmt)}
${balanceRow(l.closing, p.closing, fmt)}
${p.closing_value ? markup`<tr><th>${l.value}</th><td class="num">${fmt.money(p.closing_value.amount_minor, p.closing_value.currency)}</td></tr>` : ''}
</table>
<table class="movements">
${movement(l.opening, p.opening.total_pt4, 'opening')}
${movement(l.earned, p.earned.points_pt4, 'earned')}
${movement(l.redeemed, p.redeemed.points_pt4, 'redeemed')}
${movement(l.transferred, p.transferred.points_pt4, 'transferred')}
${movement(l.reversed, p.reversed.points_pt4, 'reversed')}
${movement(l.expired, p.expired.points_pt4, 'expired')}
${movement(l.adjusted, p.adjusted.points_pt4, 'adjusted')}
${p.other.points_pt4 !== 0n ? movement(l.other, p.other.points_pt4, 'other') : ''}
<tr class="closing"><th>${l.closing}</th><td class="num">${fmt.points(p.closing.total_pt4)}</td></tr>
</table>
${earnedTable(p, env, l)}
${redeemedTable(p, s, env, l)}
${simpleTable(
  l.transferred,
  p.transferred.items.map((i) => [
    fmt.date(i.at),
    `${i.direction === 'in' ? l.transferIn : l.transferOut} ${i.counterparty_member_id ?? ''}`,
    fmt.points(i.points_pt4, true),
  ]),
  l,
)}
${simpleTable(
  l.reversed,
  p.reversed.items.map((i) => [
    fmt.date(i.at),
    i.reversal_of ?? i.event_id ?? '',
    fmt.points(i.points_pt4, true),
  ]),
  l,
)}
${simpleTable(
  l.expired,
  p.expired.items.map((i) => [
    fmt.date(i.at),
    i.by_brand.map((b) => `${env.brandName(b.issuing_brand_id)}: ${fmt.points(b.points_pt4)}`).join(' · '),
    fmt.points(i.points_pt4, true),
  ]),
  l,
)}
${simpleTable(
  l.adjusted,
  p.adjusted.items.map((i) => [
    fmt.date(i.at),
    `${l.reason}: ${i.reason_code ?? ''} — ${i.note ?? ''}`,
    fmt.points(i.points_pt4, true),
  ]),
  l,
)}
<h3>${l.expiringSoon}</h3>
${
  p.expiring_soon.lots.length === 0
    ? markup`<p>${l.nothing}</p>`
    : markup`<table class="expiring"><tr><th>${l.expiresAt}</th><th>${l.issuedBy}</th><th class="num">${l.points}</th></tr>
${p.expiring_soon.lots.map((x) => markup`<tr><td>${fmt.date(x.expires_at)}</td><td>${env.brandName(x.issuing_brand_id)}</td><td class="num">${fmt.points(x.points_pt4)}</td></tr>`)}
</table>`
}
<p class="tie">${l.ties}: ${fmt.points(p.opening.total_pt4)} ${fmt.points(p.movements_pt4, true)} = ${fmt.points(p.closing.total_pt4)}</p>
</section>
`;
}

function earnedTable(p: ProgramStatement, env: TemplateEnv, l: Labels): SafeHtml {
  const { fmt } = env;
  if (p.earned.items.length === 0) return markup``;
  return markup`<h3>${l.earned}</h3>
<table class="earned"><tr><th>${l.date}</th><th>${l.brand}</th><th>${l.rules}</th><th class="num">${l.points}</th></tr>
${p.earned.items.map(
  (i) =>
    markup`<tr><td>${fmt.date(i.at)}</td><td>${env.brandName(i.brand_id)}${i.store_id ? markup` (${i.store_id})` : ''}</td><td class="rules">${ruleText(i, fmt)}</td><td class="num">${fmt.points(i.points_pt4, true)}</td></tr>`,
)}
</table>`;
}

/** "web-bonus +50 · outerwear-x3 ×3 (SKU-40921)": each rule that applied and what it did. */
function ruleText(i: EarnItem, fmt: Formatter): string {
  if (i.rules_applied.length === 0) return '—';
  return i.rules_applied
    .map((rule) => {
      const bonus = i.bonuses.filter((b) => b.rule_id === rule).reduce((sum, b) => sum + b.points_pt4, 0n);
      const lines = i.multipliers.filter((m) => m.rules_applied.includes(rule));
      if (bonus !== 0n) return `${rule} ${fmt.points(bonus, true)}`;
      if (lines.length > 0)
        return `${rule} ${lines.map((m) => `×${m.multiplier}${m.sku ? ` (${m.sku})` : ''}`).join(', ')}`;
      return rule;
    })
    .join(' · ');
}

function conversionRow(
  c: Conversion,
  redeemer: string | null,
  s: Statement,
  env: TemplateEnv,
  l: Labels,
): SafeHtml {
  const { fmt } = env;
  const value = moneyOf(c.value, s.common_currency);
  return markup`<tr class="conversion-row${c.cross_brand ? ' cross-brand' : ''}"><td></td><td>${fmt.points(c.points_pt4)} · ${l.issuedBy} ${env.brandName(c.issuing_brand_id)}${c.cross_brand ? markup` · ${l.crossBrand} ${env.brandName(redeemer)}` : ''}</td><td class="conversion">${c.conversion ?? ''}</td><td class="num">${fmt.money(value.amount_minor, value.currency)}</td></tr>`;
}

function redeemedTable(p: ProgramStatement, s: Statement, env: TemplateEnv, l: Labels): SafeHtml {
  const { fmt } = env;
  if (p.redeemed.items.length === 0) return markup``;
  return markup`<h3>${l.redeemed}</h3>
<table class="redeemed"><tr><th>${l.date}</th><th>${l.redeemedAt}</th><th>${l.conversion}</th><th class="num">${l.points}</th></tr>
${p.redeemed.items.map(
  (
    i,
  ) => markup`<tr><td>${fmt.date(i.at)}</td><td>${env.brandName(i.brand_id)} (${i.redemption_id ?? ''})</td><td></td><td class="num">${fmt.points(i.points_pt4, true)}</td></tr>
${i.conversions.map((c) => conversionRow(c, i.brand_id, s, env, l))}`,
)}
</table>`;
}

function simpleTable(title: string, rows: readonly (readonly string[])[], l: Labels): SafeHtml {
  if (rows.length === 0) return markup``;
  return markup`<h3>${title}</h3>
<table><tr><th>${l.date}</th><th></th><th class="num">${l.points}</th></tr>
${rows.map(([a, b, c]) => markup`<tr><td>${a ?? ''}</td><td>${b ?? ''}</td><td class="num">${c ?? ''}</td></tr>`)}
</table>`;
}
