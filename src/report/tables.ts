// Text outputs of a report: terminal tables, Markdown (the study's appendix layout), summary CSV
// and JSON. Display rounds for reading; CSV and JSON keep full double precision.
import { stringify } from 'csv-stringify/sync';
import type { GroupSummary } from '../stats/groups';
import { METRICS, type MetricDefinition } from '../stats/metrics';
import type { CiOptions, MetricSummary } from '../stats/summary';

export interface InputProblem {
  file: string;
  message: string;
}

export interface ReportData {
  generatedAt: string;
  ci: CiOptions;
  groupBy: string[];
  files: number; // inputs read (captures + record files)
  records: number; // migrations found
  problems: InputProblem[]; // bad inputs, listed, never dropped silently
  groups: GroupSummary[];
}

const MIB = 1024 * 1024;

export function displayUnit(metric: MetricDefinition): string {
  return metric.unit === 'B' ? 'MiB' : metric.unit === 'B/s' ? 'MiB/s' : 's';
}

export function formatValue(value: number | undefined, metric: MetricDefinition): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  // Seconds: at least 4 decimals, and 4 significant digits for short phases (1 ms remote connect).
  if (metric.unit === 's') return value.toFixed(value === 0 ? 4 : Math.max(4, Math.min(9, 3 - Math.floor(Math.log10(Math.abs(value))))));
  return (value / MIB).toFixed(3);
}

export function formatPercent(fraction: number | undefined): string {
  return fraction === undefined || !Number.isFinite(fraction) ? '–' : `${(fraction * 100).toFixed(1)}%`;
}

/** "95%" for confidence 0.95. */
export function ciLevel(ci: CiOptions): string {
  return `${Math.round(ci.confidence * 1000) / 10}%`;
}

export function ciDescription(ci: CiOptions): string {
  const level = ciLevel(ci);
  return ci.method === 't'
    ? `${level} CI: Student t, t(1−α/2, n−1) × s/√n (default; --ci normal for the study's z × s/√n)`
    : `${level} CI: normal, z(1−α/2) × s/√n (z = 1.959964 at 95%, the study's tables; --ci t for small n)`;
}

function ciText(s: MetricSummary, metric: MetricDefinition): string {
  if (s.ciHalfWidth === undefined) return '–';
  return `±${formatValue(s.ciHalfWidth, metric)} [${formatValue(s.ciLow, metric)}, ${formatValue(s.ciHigh, metric)}]`;
}

function outcomesText(g: GroupSummary): string {
  return Object.entries(g.outcomes)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
}

export const NO_STATISTICS = 'No statistics: no completed migration in this group (--include-failed counts the others).';

export function metricsOf(g: GroupSummary): MetricDefinition[] {
  return METRICS.filter((m) => g.metrics[m.key]);
}

function padTable(rows: string[][], rightAlignFrom = 1): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => [...(r[c] ?? '')].length)));
  return rows
    .map((r, i) => {
      const line = r.map((cell, c) => (c >= rightAlignFrom ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ');
      return i === 0 ? `${line}\n${widths.map((w) => '─'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

export function terminalReport(data: ReportData): string {
  const out: string[] = [ciDescription(data.ci), `${data.records} migrations from ${data.files} inputs, ${data.groups.length} groups`];
  for (const g of data.groups) {
    out.push('', `■ ${g.key} — ${g.included} of ${g.migrations} migrations in statistics (${outcomesText(g)})`);
    if (metricsOf(g).length === 0) {
      out.push(NO_STATISTICS);
      continue;
    }
    const rows = [['metric', 'unit', 'n', 'mean', 'sd', 'CI', 'CoV', 'min', 'median', 'max', 'outliers']];
    for (const m of metricsOf(g)) {
      const s = g.metrics[m.key];
      rows.push([m.label, displayUnit(m), String(s.n), formatValue(s.mean, m), formatValue(s.sd, m), ciText(s, m), formatPercent(s.cov), formatValue(s.min, m), formatValue(s.median, m), formatValue(s.max, m), String(s.outliers.length)]);
    }
    out.push(padTable(rows, 2));
    if (g.phaseShares.length) out.push(`phase shares: ${g.phaseShares.map((s) => `${s.label} ${formatPercent(s.share)}`).join(' · ')}`);
    for (const line of outlierLines(g)) out.push(`outlier: ${line}`);
  }
  if (data.problems.length) {
    out.push('', `${data.problems.length} input(s) could not be used:`);
    for (const p of data.problems) out.push(`  ${p.file}: ${p.message}`);
  }
  return `${out.join('\n')}\n`;
}

/** One line per flagged outlier of a group: "preparation = 0.2405 s in run-4.pcap#1 (tukey, z=1.49)". */
export function outlierLines(g: GroupSummary): string[] {
  return metricsOf(g).flatMap((m) =>
    g.metrics[m.key].outliers.map((o) => `${m.label} = ${formatValue(o.value, m)} ${displayUnit(m)} in ${o.id} (${o.rule}${o.z !== undefined ? `, z=${o.z.toFixed(2)}` : ''})`),
  );
}

function mdEscape(text: string): string {
  return text.replace(/\|/g, '\\|');
}

export function markdownReport(data: ReportData, chartFiles: readonly string[] = []): string {
  const out: string[] = ['# Migration report', '', `Generated ${data.generatedAt}. ${data.records} migrations from ${data.files} inputs; grouped by ${data.groupBy.length ? data.groupBy.join(', ') : '(no factor: one group)'}.`, '', ciDescription(data.ci) + '.', ''];
  for (const g of data.groups) {
    out.push(`## ${mdEscape(g.key)}`, '', `${g.included} of ${g.migrations} migrations in the statistics (${outcomesText(g)}).`, '');
    if (metricsOf(g).length === 0) {
      out.push(NO_STATISTICS, '');
      continue;
    }
    out.push(`| phase / metric | unit | n | mean | sd | ${ciLevel(data.ci)} CI | CoV |`, '|---|---|--:|--:|--:|--:|--:|');
    for (const m of metricsOf(g)) {
      const s = g.metrics[m.key];
      const ci = s.ciLow === undefined ? '–' : `[${formatValue(s.ciLow, m)}, ${formatValue(s.ciHigh, m)}]`;
      out.push(`| ${m.label} | ${displayUnit(m)} | ${s.n} | ${formatValue(s.mean, m)} | ${formatValue(s.sd, m)} | ${ci} | ${formatPercent(s.cov)} |`);
    }
    if (g.phaseShares.length) {
      out.push('', '| phase | mean (s) | share |', '|---|--:|--:|');
      for (const s of g.phaseShares) out.push(`| ${s.label} | ${s.meanSeconds.toFixed(4)} | ${formatPercent(s.share)} |`);
    }
    const outliers = outlierLines(g).map((line) => `- ${mdEscape(line)}`);
    if (outliers.length) out.push('', 'Outliers (flagged, kept in the statistics):', '', ...outliers);
    out.push('');
  }
  if (chartFiles.length) out.push('## Charts', '', ...chartFiles.map((f) => `![${f}](${f})`), '');
  if (data.problems.length) out.push('## Inputs that could not be used', '', ...data.problems.map((p) => `- \`${p.file}\`: ${mdEscape(p.message)}`), '');
  return out.join('\n');
}

export const SUMMARY_CSV_FIXED = ['group', 'metric', 'unit', 'n', 'mean', 'sd', 'ciMethod', 'confidence', 'ciCritical', 'ciHalfWidth', 'ciLow', 'ciHigh', 'cov', 'min', 'median', 'max', 'outliers'];

/** One row per group × metric, factor columns after the group key; values in s, B, B/s. */
export function summaryCsv(data: ReportData): string {
  const header = [...SUMMARY_CSV_FIXED.slice(0, 1), ...data.groupBy, ...SUMMARY_CSV_FIXED.slice(1)];
  const rows: unknown[][] = [header];
  for (const g of data.groups)
    for (const m of metricsOf(g)) {
      const s = g.metrics[m.key];
      rows.push([g.key, ...data.groupBy.map((f) => g.factors[f] ?? ''), m.key, m.unit, s.n, s.mean, s.sd, s.ciMethod, s.confidence, s.ciCritical, s.ciHalfWidth, s.ciLow, s.ciHigh, s.cov, s.min, s.median, s.max, s.outliers.map((o) => o.id).join(' ')]);
    }
  return stringify(rows, { cast: { number: (v) => String(v) } });
}

export function summaryJson(data: ReportData): string {
  return `${JSON.stringify(data, null, 2)}\n`;
}
