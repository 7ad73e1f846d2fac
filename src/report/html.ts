// One self-contained HTML report: the charts inlined as SVG, the tables as HTML. No scripts and
// no external resources, so it opens offline, from e-mail, or from a CI artifact.
import type { RenderedChart } from './charts';
import { ciDescription, ciLevel, metricsOf, NO_STATISTICS, outlierLines, displayUnit, formatPercent, formatValue, type ReportData } from './tables';
import { METRICS } from '../stats/metrics';

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Strip the XML prolog so the SVG can sit inline in HTML. */
function inlineSvg(svg: string): string {
  return svg.replace(/^<\?xml[^>]*>\s*/, '');
}

const STYLE = `body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.2em .6em}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
div.charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:1em 0}figcaption{font-size:.9em;color:#555}.problem{color:#a00}`;

export function htmlReport(data: ReportData, charts: readonly RenderedChart[]): string {
  const parts: string[] = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8"><title>migscope report</title>',
    `<style>${STYLE}</style></head><body>`,
    '<h1>Migration report</h1>',
    `<p>Generated ${esc(data.generatedAt)}. ${data.records} migrations from ${data.files} inputs; grouped by ${esc(data.groupBy.join(', ') || '(no factor: one group)')}.</p>`,
    `<p>${esc(ciDescription(data.ci))}.</p>`,
  ];
  for (const g of data.groups) {
    parts.push(`<h2>${esc(g.key)}</h2>`, `<p>${g.included} of ${g.migrations} migrations in the statistics.</p>`);
    if (metricsOf(g).length === 0) {
      parts.push(`<p>${esc(NO_STATISTICS)}</p>`);
      continue;
    }
    parts.push(`<table class="stats"><tr><th>phase / metric</th><th>unit</th><th>n</th><th>mean</th><th>sd</th><th>${ciLevel(data.ci)} CI</th><th>CoV</th><th>min</th><th>median</th><th>max</th><th>outliers</th></tr>`);
    for (const m of METRICS) {
      const s = g.metrics[m.key];
      if (!s) continue;
      const ci = s.ciLow === undefined ? '–' : `[${formatValue(s.ciLow, m)}, ${formatValue(s.ciHigh, m)}]`;
      const cells = [String(s.n), formatValue(s.mean, m), formatValue(s.sd, m), ci, formatPercent(s.cov), formatValue(s.min, m), formatValue(s.median, m), formatValue(s.max, m), String(s.outliers.length)];
      parts.push(`<tr><td>${esc(m.label)}</td><td>${displayUnit(m)}</td>${cells.map((c) => `<td class="n">${esc(c)}</td>`).join('')}</tr>`);
    }
    parts.push('</table>');
    if (g.phaseShares.length) {
      parts.push('<table class="shares"><tr><th>phase</th><th>mean (s)</th><th>share</th></tr>');
      for (const s of g.phaseShares) parts.push(`<tr><td>${esc(s.label)}</td><td class="n">${s.meanSeconds.toFixed(4)}</td><td class="n">${formatPercent(s.share)}</td></tr>`);
      parts.push('</table>');
    }
    const outliers = outlierLines(g);
    if (outliers.length) parts.push(`<p>Outliers (flagged, kept in the statistics):</p><ul>${outliers.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>`);
  }
  parts.push('<div class="charts">');
  for (const c of charts) parts.push(`<figure id="chart-${esc(c.name)}" class="chart">${inlineSvg(c.svg)}<figcaption>${esc(c.title)}</figcaption></figure>`);
  parts.push('</div>');
  if (data.problems.length) {
    parts.push('<h2>Inputs that could not be used</h2><ul>');
    for (const p of data.problems) parts.push(`<li class="problem"><code>${esc(p.file)}</code>: ${esc(p.message)}</li>`);
    parts.push('</ul>');
  }
  parts.push('</body></html>', '');
  return parts.join('\n');
}
