// From per-migration records to a report: group by factors, summarize, and write every output
// format into one directory (summary CSV/JSON, Markdown, SVG charts, self-contained HTML).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseTimestamp } from '../core/timestamp';
import type { MigrationRecord } from '../migration/record';
import { migrationId } from '../stats/metrics';
import { factorsOf, type FactorSources } from '../stats/factors';
import { defaultGroupBy, groupRecords, summarizeGroup } from '../stats/groups';
import type { CiOptions } from '../stats/summary';
import { renderReportCharts } from './charts';
import { htmlReport } from './html';
import { markdownReport, summaryCsv, summaryJson, type InputProblem, type ReportData } from './tables';

export interface BuildOptions {
  ci: CiOptions;
  sources: FactorSources;
  groupBy?: string[];
  includeFailed?: boolean;
  files: number;
  problems: InputProblem[];
}

export function buildReport(records: readonly MigrationRecord[], options: BuildOptions): ReportData {
  const factorFn = (r: MigrationRecord) => factorsOf(r, options.sources);
  const groupBy = options.groupBy ?? defaultGroupBy(records.map(factorFn), records.map((r) => r.capture));
  const groups = groupRecords(records, factorFn, { groupBy, includeFailed: options.includeFailed });
  return {
    generatedAt: new Date().toISOString(),
    ci: options.ci,
    groupBy,
    files: options.files,
    records: records.length,
    problems: options.problems,
    groups: groups.map((g) => summarizeGroup(g, options.ci)),
  };
}

export interface WrittenReport {
  files: string[];
}

/** Write summary.csv, summary.json, report.md, charts/*.svg and report.html into `outDir`. */
export async function writeReport(data: ReportData, records: readonly MigrationRecord[], outDir: string): Promise<WrittenReport> {
  fs.mkdirSync(path.join(outDir, 'charts'), { recursive: true });
  const charts = await renderReportCharts(data.groups, records, data.groupBy);
  const written: string[] = [];
  const write = (name: string, content: string): void => {
    fs.writeFileSync(path.join(outDir, name), content);
    written.push(path.join(outDir, name));
  };
  for (const c of charts) write(path.join('charts', `${c.name}.svg`), c.svg);
  write('summary.csv', summaryCsv(data));
  write('summary.json', summaryJson(data));
  write('report.md', markdownReport(data, charts.map((c) => `charts/${c.name}.svg`)));
  write('report.html', htmlReport(data, charts));
  return { files: written };
}

/** Migrations that appear in more than one input (same hosts and domain, start within the same
 *  millisecond), e.g. a pcap and its DPMI conversion both given: each copy is counted, so say so. */
export function duplicateMigrations(records: readonly MigrationRecord[]): string[][] {
  const byKey = new Map<string, string[]>();
  for (const r of records) {
    let ms: string;
    try {
      const t = parseTimestamp(r.start);
      ms = `${t.sec}.${Math.floor(t.ps / 1e9)}`;
    } catch {
      continue;
    }
    const key = `${r.source}|${r.destination}|${r.domain ?? ''}|${ms}`;
    byKey.set(key, [...(byKey.get(key) ?? []), migrationId(r)]);
  }
  return [...byKey.values()].filter((ids) => ids.length > 1);
}
