// Per-migration records in and out: `analyze --json` / JSON Lines / `--csv` files are read back
// so a report re-run never re-parses captures; `--save-records` writes them. The CSV is the record
// flattened to dotted columns (phase.transfer.seconds, downtime.gapSec, marker.run, ...);
// passes and per-phase packet numbers stay JSON-only.
import { stringify } from 'csv-stringify/sync';
import { PHASES, type MigrationRecord, type PhaseName, type PhaseSpan } from '../migration/record';
import { parseCsvObjects } from '../stats/csv-parse';

const TOP_TEXT = ['capture', 'domain', 'uuid', 'source', 'destination', 'mode', 'outcome', 'reason', 'start', 'end'] as const;
const TOP_NUMBER = ['index', 'tsDigits', 'migrationTimeSec'] as const;
const TOP_BOOL = ['live', 'postcopy'] as const;
const TRANSFER_NUMBER = ['bytes', 'throughputBps'] as const;
const TRANSFER_TEXT = ['connection', 'migrateUri'] as const;
const DOWNTIME_NUMBER = ['probesSent', 'probesLost', 'intervalMs', 'lostTimesIntervalSec', 'gapSec'] as const;
const DOWNTIME_TEXT = ['probeTarget', 'announcement'] as const;
const DOWNTIME_BOOL = ['repliesVisible', 'guestUnreachableAfter'] as const;

/** The fixed CSV columns (marker.* columns follow, one per marker name seen). */
export const RECORD_CSV_COLUMNS: readonly string[] = [
  ...TOP_TEXT.slice(0, 1),
  'index',
  ...TOP_TEXT.slice(1),
  'live',
  'postcopy',
  'tsDigits',
  'migrationTimeSec',
  ...PHASES.flatMap((p) => [`phase.${p}.start`, `phase.${p}.end`, `phase.${p}.seconds`]),
  ...[...TRANSFER_NUMBER, ...TRANSFER_TEXT].map((k) => `transfer.${k}`),
  ...[...DOWNTIME_TEXT, ...DOWNTIME_NUMBER, ...DOWNTIME_BOOL].map((k) => `downtime.${k}`),
  'warnings',
];

const WARNING_SEPARATOR = ' | ';

function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'boolean' ? (value ? 'true' : 'false') : String(value);
}

export function recordsToCsv(records: readonly MigrationRecord[]): string {
  const markerNames = [...new Set(records.flatMap((r) => Object.keys(r.markers ?? {})))];
  const header = [...RECORD_CSV_COLUMNS, ...markerNames.map((m) => `marker.${m}`)];
  const rows = records.map((r) => {
    const flat: Record<string, unknown> = { ...r, warnings: r.warnings?.join(WARNING_SEPARATOR) };
    for (const p of PHASES) {
      const span = r.phases?.[p];
      if (span) Object.assign(flat, { [`phase.${p}.start`]: span.start, [`phase.${p}.end`]: span.end, [`phase.${p}.seconds`]: span.seconds });
    }
    for (const [k, v] of Object.entries(r.transfer ?? {})) flat[`transfer.${k}`] = v;
    for (const [k, v] of Object.entries(r.downtime ?? {})) flat[`downtime.${k}`] = v;
    for (const [k, v] of Object.entries(r.markers ?? {})) flat[`marker.${k}`] = v;
    return header.map((h) => cell(flat[h]));
  });
  return stringify([header, ...rows]);
}

function toNumber(text: string, column: string, row: number): number | undefined {
  if (text === '') return undefined;
  const n = Number(text);
  if (!Number.isFinite(n)) throw new Error(`row ${row}: column ${column} is not a number: ${JSON.stringify(text)}`);
  return n;
}

function toBool(text: string): boolean | undefined {
  if (text === '') return undefined;
  return text === 'true' || text === '1';
}

function assign<T extends object>(target: T, key: string, value: unknown): void {
  if (value !== undefined) (target as Record<string, unknown>)[key] = value;
}

export function recordsFromCsv(text: string): MigrationRecord[] {
  return parseCsvObjects(text).map((row, i) => {
    const line = i + 2;
    if (!row.capture || row.index === undefined) throw new Error(`row ${line}: needs capture and index columns (not a records CSV?)`);
    const record = { phases: {}, warnings: [] } as unknown as MigrationRecord;
    for (const k of TOP_TEXT) assign(record, k, row[k] || undefined);
    for (const k of TOP_NUMBER) assign(record, k, toNumber(row[k] ?? '', k, line));
    for (const k of TOP_BOOL) assign(record, k, toBool(row[k] ?? ''));
    for (const p of PHASES) {
      const seconds = toNumber(row[`phase.${p}.seconds`] ?? '', `phase.${p}.seconds`, line);
      if (seconds === undefined) continue;
      const span: PhaseSpan = { start: row[`phase.${p}.start`] ?? '', end: row[`phase.${p}.end`] ?? '', seconds };
      record.phases[p as PhaseName] = span;
    }
    const transfer: Record<string, unknown> = {};
    for (const k of TRANSFER_NUMBER) assign(transfer, k, toNumber(row[`transfer.${k}`] ?? '', `transfer.${k}`, line));
    for (const k of TRANSFER_TEXT) assign(transfer, k, row[`transfer.${k}`] || undefined);
    if (Object.keys(transfer).length) record.transfer = transfer as MigrationRecord['transfer'];
    const downtime: Record<string, unknown> = {};
    for (const k of DOWNTIME_NUMBER) assign(downtime, k, toNumber(row[`downtime.${k}`] ?? '', `downtime.${k}`, line));
    for (const k of DOWNTIME_TEXT) assign(downtime, k, row[`downtime.${k}`] || undefined);
    for (const k of DOWNTIME_BOOL) assign(downtime, k, toBool(row[`downtime.${k}`] ?? ''));
    if (Object.keys(downtime).length) record.downtime = downtime as unknown as MigrationRecord['downtime'];
    const markers = Object.entries(row).filter(([k, v]) => k.startsWith('marker.') && v !== '');
    if (markers.length) record.markers = Object.fromEntries(markers.map(([k, v]) => [k.slice('marker.'.length), v]));
    record.warnings = row.warnings ? row.warnings.split(WARNING_SEPARATOR) : [];
    record.outcome ??= 'completed';
    return record;
  });
}

function looksLikeRecord(value: unknown): value is MigrationRecord {
  if (typeof value !== 'object' || value === null || !('capture' in value && 'phases' in value && 'outcome' in value)) return false;
  const r = value as Record<string, unknown>;
  // Shape checks where a wrong type would break grouping later rather than fail here.
  if (typeof r.capture !== 'string' || typeof r.outcome !== 'string' || (r.phases !== null && typeof r.phases !== 'object'))
    throw new Error(`record ${JSON.stringify(r.capture)}#${String(r.index)}: capture/outcome must be strings and phases an object`);
  return true;
}

/** Records from whatever `analyze --json` writes: an array of records, an object holding
 *  `migrations`/`records` (one capture's analysis), an array of such objects, or JSON Lines. */
export function recordsFromJson(text: string): MigrationRecord[] {
  const trimmed = text.trim();
  let values: unknown[];
  try {
    values = [JSON.parse(trimmed)];
  } catch (err) {
    // JSON Lines: one record (or analysis) per line.
    const lines = trimmed.split(/\r?\n/).filter((l) => l.trim() !== '');
    if (lines.length < 2) throw err;
    values = lines.map((l, i) => {
      try {
        return JSON.parse(l);
      } catch (e) {
        throw new Error(`line ${i + 1}: ${(e as Error).message}`);
      }
    });
  }
  const records: MigrationRecord[] = [];
  const visit = (value: unknown, depth: number): void => {
    if (looksLikeRecord(value)) records.push({ ...value, warnings: value.warnings ?? [] });
    else if (Array.isArray(value) && depth < 3) value.forEach((v) => visit(v, depth + 1));
    else if (value && typeof value === 'object' && depth < 3) {
      const holder = value as Record<string, unknown>;
      const list = holder.migrations ?? holder.records;
      if (!Array.isArray(list)) throw new Error('JSON holds no migration records (expected analyze --json output)');
      list.forEach((v) => visit(v, depth + 1));
    } else throw new Error('JSON holds no migration records (expected analyze --json output)');
  };
  values.forEach((v) => visit(v, 0));
  return records;
}
