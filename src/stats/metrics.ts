// The metrics a report summarizes, as a table: key, label, unit, and how to read it from a record.
// Phases come first (timeline order), then migration time, downtime (both methods), transfer.
import { PHASES, PHASE_LABELS, type MigrationRecord, type PhaseName } from '../migration/record';

export type MetricUnit = 's' | 'B' | 'B/s';

export interface MetricDefinition {
  key: string;
  label: string;
  unit: MetricUnit;
  phase?: PhaseName;
  read(record: MigrationRecord): number | undefined;
}

const phaseMetrics: MetricDefinition[] = PHASES.map((phase) => ({
  key: `phase.${phase}`,
  label: PHASE_LABELS[phase],
  unit: 's' as const,
  phase,
  read: (r: MigrationRecord) => r.phases?.[phase]?.seconds,
}));

export const METRICS: readonly MetricDefinition[] = [
  ...phaseMetrics,
  { key: 'migrationTime', label: 'migration time', unit: 's', read: (r) => r.migrationTimeSec },
  {
    key: 'downtime.lostTimesInterval',
    label: 'downtime (lost × interval)',
    unit: 's',
    read: (r) => (r.downtime?.repliesVisible === false ? undefined : r.downtime?.lostTimesIntervalSec),
  },
  {
    key: 'downtime.gap',
    label: 'downtime (reply gap)',
    unit: 's',
    read: (r) => (r.downtime?.repliesVisible === false ? undefined : r.downtime?.gapSec),
  },
  { key: 'transfer.bytes', label: 'transfer bytes', unit: 'B', read: (r) => r.transfer?.bytes },
  { key: 'transfer.throughput', label: 'transfer throughput', unit: 'B/s', read: (r) => r.transfer?.throughputBps },
];

export function metricByKey(key: string): MetricDefinition | undefined {
  return METRICS.find((m) => m.key === key);
}

export const PHASE_METRICS: readonly MetricDefinition[] = METRICS.filter((m) => m.phase !== undefined);

/** A stable identity for one migration in outlier lists and charts. */
export function migrationId(record: MigrationRecord): string {
  return `${record.capture}#${record.index}`;
}
