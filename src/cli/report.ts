// `migscope report`: many captures (or saved records) → statistics per experiment group,
// as terminal tables and, with --out, CSV/JSON/Markdown/SVG/HTML. Thin: options → src/report.
import * as fs from 'node:fs';
import type { CommandModule } from 'yargs';
import { ExitCode } from '../core/errors';
import type { MigrationRecord } from '../migration/record';
import { analyzeCaptures, expandInputs, progressLine, readRecordFile } from '../report/batch';
import { buildReport, duplicateMigrations, writeReport } from '../report/build';
import type { AnalyzeReply } from '../report/batch-worker';
import { RecordCache } from '../report/cache';
import { recordsToCsv } from '../report/records-io';
import { summaryJson, terminalReport, type InputProblem } from '../report/tables';
import { compilePattern, parseManifest, type FactorSources } from '../stats/factors';
import type { CiMethod } from '../stats/summary';

interface ReportArgs {
  inputs: string[];
  jobs?: number;
  manifest?: string;
  pattern?: string;
  'dir-factors'?: string;
  'group-by'?: string;
  ci: CiMethod;
  confidence: number;
  'include-failed': boolean;
  out?: string;
  'save-records'?: string;
  cache?: string;
  json: boolean;
  quiet: boolean;
}

const PROBLEMS_PER_FILE = 5;

function list(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

export async function runReport(args: ReportArgs): Promise<number> {
  const sources: FactorSources = {
    manifest: args.manifest ? parseManifest(fs.readFileSync(args.manifest, 'utf8'), args.manifest) : undefined,
    pattern: args.pattern ? compilePattern(args.pattern) : undefined,
    dirFactors: list(args['dir-factors']),
  };
  const inputs = expandInputs(args.inputs);
  const problems: InputProblem[] = [...inputs.problems];
  const records: MigrationRecord[] = [];

  for (const file of inputs.recordFiles) {
    try {
      const found = readRecordFile(file);
      if (found.length === 0) problems.push({ file, message: 'no migration records in it' });
      records.push(...found);
    } catch (err) {
      problems.push({ file, message: (err as Error).message });
    }
  }

  const showProgress = process.stderr.isTTY && !args.quiet;
  const cache = args.cache ? new RecordCache(args.cache) : undefined;
  const cached = inputs.captures.map((file) => cache?.get(file));
  const toAnalyze = inputs.captures.filter((_, i) => !cached[i]);
  const analyzed = await analyzeCaptures(toAnalyze, {
    jobs: args.jobs,
    onProgress: showProgress ? (p) => process.stderr.write(progressLine(p)) : undefined,
  });
  if (showProgress && toAnalyze.length) process.stderr.write('\n');
  for (const reply of analyzed) cache?.put(reply);
  let next = 0;
  const replies: AnalyzeReply[] = cached.map((hit) => hit ?? analyzed[next++]); // input order kept
  for (const reply of replies) {
    if (reply.error) problems.push({ file: reply.file, message: reply.error });
    // A capture with a thousand TCP gaps should not drown the summary: the first few, then a count.
    for (const p of reply.problems.slice(0, PROBLEMS_PER_FILE)) problems.push({ file: reply.file, message: `partial: ${p}` });
    if (reply.problems.length > PROBLEMS_PER_FILE) problems.push({ file: reply.file, message: `partial: … ${reply.problems.length - PROBLEMS_PER_FILE} more problems` });
    if (!reply.error && reply.problems.length === 0 && reply.records.length === 0) problems.push({ file: reply.file, message: 'no migration found in the capture' });
    records.push(...reply.records);
  }

  if (args['save-records']) {
    const file = args['save-records'];
    fs.writeFileSync(file, /\.csv$/i.test(file) ? recordsToCsv(records) : `${JSON.stringify(records, null, 1)}\n`);
  }

  const data = buildReport(records, {
    ci: { method: args.ci, confidence: args.confidence },
    sources,
    groupBy: list(args['group-by']),
    includeFailed: args['include-failed'],
    files: inputs.captures.length + inputs.recordFiles.length,
    problems,
  });
  for (const same of duplicateMigrations(records)) process.stderr.write(`migscope: warning: one migration in several inputs, each counted: ${same.join(' = ')}\n`);
  if (args.json) process.stdout.write(summaryJson(data));
  else if (!args.quiet) process.stdout.write(terminalReport(data));
  if (args.out) {
    const written = await writeReport(data, records, args.out);
    if (!args.quiet) process.stderr.write(`wrote ${written.files.length} files to ${args.out}\n`);
  }
  if (records.length === 0) return ExitCode.unreadable;
  return problems.length ? ExitCode.partial : ExitCode.ok;
}

export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report <inputs..>',
  describe: 'statistics over many migrations: captures, directories, globs, or saved analyze --json/--csv records',
  builder: (y) =>
    y
      .positional('inputs', { type: 'string', array: true, demandOption: true, describe: 'captures, directories, globs, or record files (.json/.jsonl/.csv)' })
      .option('jobs', { alias: 'j', type: 'number', describe: 'worker threads analysing captures (default: one per core)' })
      .option('manifest', { type: 'string', describe: 'CSV with a file column and one column per factor' })
      .option('pattern', { type: 'string', describe: "filename pattern with named fields, e.g. '{flavor}-{load}-{run}.pcap'" })
      .option('dir-factors', { type: 'string', describe: 'names for the innermost parent directories, e.g. flavor,load' })
      .option('group-by', { type: 'string', describe: "factors that form groups, e.g. flavor,load ('' = one group; default: all but run/rep)" })
      .option('ci', { choices: ['t', 'normal'] as const, default: 't' as CiMethod, describe: 'confidence interval: Student t (default) or normal z (the study)' })
      .option('confidence', { type: 'number', default: 0.95, describe: 'confidence level of the interval' })
      .option('include-failed', { type: 'boolean', default: false, describe: 'let failed/incomplete migrations enter the statistics' })
      .option('out', { type: 'string', describe: 'directory for summary.csv/json, report.md, report.html and charts/*.svg' })
      .option('save-records', { type: 'string', describe: 'write the per-migration records (.json, or .csv by extension) for re-runs' })
      .option('cache', { type: 'string', describe: 'directory caching each capture\'s records (keyed by path, size, mtime, version)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the summary as JSON instead of tables' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no tables, no progress' })
      .check((a) => {
        if (a.jobs !== undefined && !(Number.isInteger(a.jobs) && a.jobs >= 1)) throw new Error('--jobs must be a positive integer');
        if (!(a.confidence > 0 && a.confidence < 1)) throw new Error('--confidence must be between 0 and 1');
        return true;
      }) as any,
  handler: async (args) => {
    process.exitCode = await runReport(args);
  },
};
