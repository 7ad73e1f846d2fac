// Grouping migrations by experiment factors and accumulating every metric per group.
// GroupAccumulators merge exactly (see aggregate.ts), so partial results from workers or
// from separate record files combine into the same statistics as one pass.
import type { MigrationRecord, MigrationOutcome } from '../migration/record';
import { addObservation, emptyAccumulator, mergeAccumulators, type Accumulator } from './aggregate';
import { type Factors, REPETITION_FACTORS } from './factors';
import { METRICS, PHASE_METRICS, migrationId } from './metrics';
import { summarize, type CiOptions, type MetricSummary } from './summary';

export interface GroupAccumulator {
  key: string; // "flavor=small, load=50" or "all"
  factors: Factors; // the group-by factors only
  migrations: number; // every record seen, whatever its outcome
  outcomes: Partial<Record<MigrationOutcome, number>>;
  included: number; // records that entered the statistics
  metrics: Record<string, Accumulator>;
}

export interface GroupingOptions {
  groupBy?: readonly string[]; // undefined: every factor except repetition counters
  includeFailed?: boolean; // default: only completed migrations enter the statistics
}

export function groupKey(factors: Factors, groupBy: readonly string[]): { key: string; factors: Factors } {
  const selected: Factors = {};
  for (const name of groupBy) selected[name] = factors[name] ?? '(none)';
  const key = groupBy.length === 0 ? 'all' : groupBy.map((name) => `${name}=${selected[name]}`).join(', ');
  return { key, factors: selected };
}

/** The default grouping: every factor seen, in first-seen order, except run/rep counters and
 *  factors with a different level for every capture (an id or a measurement, e.g. a wall time
 *  column in a manifest, is no experimental condition). `captures[i]` belongs to `allFactors[i]`. */
export function defaultGroupBy(allFactors: readonly Factors[], captures?: readonly string[]): string[] {
  const names: string[] = [];
  for (const f of allFactors) for (const name of Object.keys(f)) if (!names.includes(name)) names.push(name);
  const distinctCaptures = new Set(captures ?? allFactors.map((_, i) => String(i))).size;
  const idLike = (name: string) => distinctCaptures > 2 && new Set(allFactors.map((f) => f[name])).size >= distinctCaptures;
  return names.filter((n) => !REPETITION_FACTORS.includes(n.toLowerCase()) && !idLike(n));
}

function emptyGroup(key: string, factors: Factors): GroupAccumulator {
  return { key, factors, migrations: 0, outcomes: {}, included: 0, metrics: {} };
}

export function addRecord(group: GroupAccumulator, record: MigrationRecord, includeFailed = false): void {
  group.migrations += 1;
  group.outcomes[record.outcome] = (group.outcomes[record.outcome] ?? 0) + 1;
  if (record.outcome !== 'completed' && !includeFailed) return;
  group.included += 1;
  const id = migrationId(record);
  for (const metric of METRICS) {
    const value = metric.read(record);
    if (value === undefined || !Number.isFinite(value)) continue;
    addObservation((group.metrics[metric.key] ??= emptyAccumulator()), value, id);
  }
}

export function mergeGroups(a: GroupAccumulator, b: GroupAccumulator): GroupAccumulator {
  const outcomes = { ...a.outcomes };
  for (const [k, v] of Object.entries(b.outcomes)) outcomes[k as MigrationOutcome] = (outcomes[k as MigrationOutcome] ?? 0) + (v ?? 0);
  const metrics: Record<string, Accumulator> = {};
  for (const key of new Set([...Object.keys(a.metrics), ...Object.keys(b.metrics)]))
    metrics[key] = mergeAccumulators(a.metrics[key] ?? emptyAccumulator(), b.metrics[key] ?? emptyAccumulator());
  return { key: a.key, factors: a.factors, migrations: a.migrations + b.migrations, outcomes, included: a.included + b.included, metrics };
}

/** Group records: `factorsOf` gives each record's factors (see factors.ts). Groups keep first-seen order. */
export function groupRecords(
  records: readonly MigrationRecord[],
  factorsOf: (r: MigrationRecord) => Factors,
  options: GroupingOptions = {},
): GroupAccumulator[] {
  const factorList = records.map(factorsOf);
  const groupBy = options.groupBy ?? defaultGroupBy(factorList, records.map((r) => r.capture));
  const groups = new Map<string, GroupAccumulator>();
  records.forEach((record, i) => {
    const { key, factors } = groupKey(factorList[i], groupBy);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = emptyGroup(key, factors)));
    addRecord(group, record, options.includeFailed);
  });
  return [...groups.values()];
}

export interface PhaseShare {
  phase: string; // metric key, e.g. phase.transfer
  label: string;
  meanSeconds: number;
  share: number; // fraction of the sum of mean phase durations (bars add up to 100%)
}

export interface GroupSummary {
  key: string;
  factors: Factors;
  migrations: number;
  included: number;
  outcomes: Partial<Record<MigrationOutcome, number>>;
  metrics: Record<string, MetricSummary>;
  phaseShares: PhaseShare[];
}

export function phaseShares(metrics: Record<string, MetricSummary>): PhaseShare[] {
  const present = PHASE_METRICS.filter((m) => metrics[m.key]?.mean !== undefined);
  const total = present.reduce((sum, m) => sum + (metrics[m.key].mean as number), 0);
  return present.map((m) => ({
    phase: m.key,
    label: m.label,
    meanSeconds: metrics[m.key].mean as number,
    share: total > 0 ? (metrics[m.key].mean as number) / total : 0,
  }));
}

export function summarizeGroup(group: GroupAccumulator, ci: CiOptions): GroupSummary {
  const metrics: Record<string, MetricSummary> = {};
  for (const metric of METRICS) if (group.metrics[metric.key]) metrics[metric.key] = summarize(group.metrics[metric.key], ci);
  return {
    key: group.key,
    factors: group.factors,
    migrations: group.migrations,
    included: group.included,
    outcomes: group.outcomes,
    metrics,
    phaseShares: phaseShares(metrics),
  };
}
