// Charts as Vega-Lite specs (declarative, data + encoding), rendered to standalone SVG in Node by
// vega's headless View (renderer 'none' + toSVG: no canvas or browser needed).
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PHASES, PHASE_LABELS, type MigrationRecord } from '../migration/record';
import { parseTimestamp, secondsBetween } from '../core/timestamp';
import type { GroupSummary } from '../stats/groups';
import { METRICS, PHASE_METRICS, type MetricDefinition } from '../stats/metrics';

// vega and vega-lite ship ESM only. With "module": "commonjs" TypeScript rewrites `import()` into
// require(), which cannot load ESM on Node 20; a Function-built import() survives compilation.
const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<any>;

interface VegaLibraries {
  vega: any;
  vegaLite: any;
}
let libraries: Promise<VegaLibraries> | undefined;

function loadVega(): Promise<VegaLibraries> {
  // Resolve through require so the packages are found next to migscope, whatever the cwd.
  const url = (name: string) => pathToFileURL(require.resolve(name)).href;
  libraries ??= Promise.all([importEsm(url('vega')), importEsm(url('vega-lite'))]).then(([vega, vegaLite]) => ({ vega, vegaLite }));
  return libraries;
}

export type VegaLiteSpec = Record<string, unknown>;

export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const { vega, vegaLite } = await loadVega();
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const PHASE_ORDER = PHASES.map((p) => PHASE_LABELS[p]);
const FONT = { config: { font: 'sans-serif', view: { stroke: null } } };

/** 100% stacked bars: each group's mean phase durations as shares of their sum. */
export function phaseShareSpec(groups: readonly GroupSummary[]): VegaLiteSpec {
  const values = groups.flatMap((g) =>
    g.phaseShares.map((s) => ({ group: g.key, phase: s.label, order: PHASE_ORDER.indexOf(s.label), share: s.share, meanSeconds: s.meanSeconds })),
  );
  return {
    $schema: SCHEMA,
    title: 'Phase shares of the migration (mean phase durations, 100% stacked)',
    data: { values },
    mark: { type: 'bar' },
    width: 560,
    height: { step: 28 },
    encoding: {
      y: { field: 'group', type: 'nominal', title: null, sort: groups.map((g) => g.key) },
      x: { field: 'share', type: 'quantitative', stack: 'normalize', title: 'share of phase total', axis: { format: '%' } },
      color: { field: 'phase', type: 'nominal', scale: { domain: PHASE_ORDER.filter((p) => values.some((v) => v.phase === p)) }, title: 'phase' },
      order: { field: 'order', type: 'quantitative' },
      tooltip: [{ field: 'phase' }, { field: 'meanSeconds', format: '.4f', title: 'mean (s)' }, { field: 'share', format: '.1%' }],
    },
    ...FONT,
  };
}

/** Mean ± CI of one metric across factor levels: x = first group-by factor, colour = the others. */
export function meanCiSpec(groups: readonly GroupSummary[], metric: MetricDefinition, groupBy: readonly string[]): VegaLiteSpec | undefined {
  const xFactor = groupBy[0];
  const values = groups
    .filter((g) => g.metrics[metric.key]?.mean !== undefined)
    .map((g) => {
      const s = g.metrics[metric.key];
      const rest = groupBy.slice(1).map((f) => g.factors[f]).join(' / ');
      return {
        level: xFactor ? g.factors[xFactor] : g.key,
        series: rest || 'all',
        mean: s.mean,
        low: s.ciLow ?? s.mean,
        high: s.ciHigh ?? s.mean,
        n: s.n,
      };
    });
  if (values.length === 0) return undefined;
  const first = groups.find((g) => g.metrics[metric.key])?.metrics[metric.key];
  const ciLabel = `${Math.round((first?.confidence ?? 0.95) * 1000) / 10}% CI, ${first?.ciMethod === 'normal' ? 'normal' : 'Student t'}`;
  const levels = [...new Set(values.map((v) => v.level))]; // first-seen order, as the groups came
  const x = { field: 'level', type: 'nominal', title: xFactor ?? 'group', sort: levels, axis: { labelAngle: 0 } };
  const color = { field: 'series', type: 'nominal', title: groupBy.slice(1).join(' / ') || null };
  const offset = { field: 'series' };
  return {
    $schema: SCHEMA,
    title: `${metric.label} (${metric.unit}): mean ± ${ciLabel}`,
    data: { values },
    width: 300, // two charts per row in the HTML report
    height: 200,
    encoding: { x, xOffset: offset, color },
    layer: [
      { mark: { type: 'rule', strokeWidth: 2 }, encoding: { y: { field: 'low', type: 'quantitative', title: `${metric.label} (${metric.unit})`, scale: { zero: false } }, y2: { field: 'high' } } },
      {
        mark: { type: 'point', filled: true, size: 60 },
        encoding: {
          y: { field: 'mean', type: 'quantitative' },
          tooltip: [{ field: 'level' }, { field: 'series' }, { field: 'mean' }, { field: 'low' }, { field: 'high' }, { field: 'n' }],
        },
      },
    ],
    ...FONT,
  };
}

export interface TimelineOptions {
  maxMigrations: number;
}

/** Gantt-like chart: one row per migration, its phases as bars on seconds since remote-connect start. */
export function timelineSpec(records: readonly MigrationRecord[], options: TimelineOptions = { maxMigrations: 60 }): VegaLiteSpec | undefined {
  const shown = records.slice(0, options.maxMigrations);
  const values = shown.flatMap((r) => {
    let origin;
    try {
      origin = parseTimestamp(r.start);
    } catch {
      return [];
    }
    const label = `${path.basename(r.capture)}#${r.index}`;
    return PHASES.flatMap((p) => {
      const span = r.phases?.[p];
      if (!span?.start || !span.end) return [];
      try {
        return [{ migration: label, phase: PHASE_LABELS[p], order: PHASES.indexOf(p), from: secondsBetween(origin, parseTimestamp(span.start)), to: secondsBetween(origin, parseTimestamp(span.end)), seconds: span.seconds }];
      } catch {
        return [];
      }
    });
  });
  if (values.length === 0) return undefined;
  const title = records.length > shown.length ? `Per-migration timeline (first ${shown.length} of ${records.length})` : 'Per-migration timeline';
  return {
    $schema: SCHEMA,
    title,
    data: { values },
    mark: { type: 'bar' },
    width: 560,
    height: { step: 18 },
    encoding: {
      y: { field: 'migration', type: 'nominal', title: null, sort: null },
      x: { field: 'from', type: 'quantitative', title: 'seconds since remote connect' },
      x2: { field: 'to' },
      color: { field: 'phase', type: 'nominal', scale: { domain: PHASE_ORDER.filter((p) => values.some((v) => v.phase === p)) } },
      tooltip: [{ field: 'migration' }, { field: 'phase' }, { field: 'seconds', format: '.4f' }],
    },
    ...FONT,
  };
}

export interface RenderedChart {
  name: string; // file stem, e.g. phase-shares
  title: string;
  svg: string;
}

/** Every chart of a report, rendered. Metrics without data get no chart. */
export async function renderReportCharts(
  groups: readonly GroupSummary[],
  records: readonly MigrationRecord[],
  groupBy: readonly string[],
): Promise<RenderedChart[]> {
  const charts: { name: string; title: string; spec: VegaLiteSpec | undefined }[] = [
    { name: 'phase-shares', title: 'Phase shares per group', spec: PHASE_METRICS.some((m) => groups.some((g) => g.metrics[m.key])) ? phaseShareSpec(groups) : undefined },
    ...METRICS.map((m) => ({ name: `mean-ci-${m.key.replace(/\./g, '-')}`, title: `${m.label}: mean ± CI`, spec: meanCiSpec(groups, m, groupBy) })),
    { name: 'timeline', title: 'Per-migration timeline', spec: timelineSpec(records) },
  ];
  const rendered: RenderedChart[] = [];
  for (const c of charts) if (c.spec) rendered.push({ name: c.name, title: c.title, svg: await renderSvg(c.spec) });
  return rendered;
}

