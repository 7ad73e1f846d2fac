// `migscope analyze <capture...>`: the migrations in captures, their phases, transfer and
// downtime, as terminal tables, --json, --csv; --timeline (marker messages as a text sequence
// diagram) and --messages (every libvirt message, tshark-TSV-like). Thin: options → analyzeCapture.
import type { CommandModule } from 'yargs';
import { capturesWithStdin } from './stdin-args';
import { ExitCode } from '../core/errors';
import { formatTimestamp, isoTimestamp, parseTimestamp, secondsBetween, type Timestamp } from '../core/timestamp';
import { analyzeCapture, type CaptureAnalysis, type MigrationEnricher } from '../migration/analyze-capture';
import { defaultEnrichers } from '../migration/enrichers';
import { formatPassTable } from '../protocols/qemu/passes';
import { PHASES, PHASE_LABELS, type MigrationRecord } from '../migration/record';
import type { MigrationDetail } from '../migration/timeline';
import { MESSAGE_STATUS_NAMES, MESSAGE_TYPE_NAMES, procedureName } from '../protocols/libvirt/rpc';
import { recordsToCsv } from '../report/records-io';

interface AnalyzeArgs {
  captures: string[];
  json?: boolean;
  csv?: boolean;
  timeline: boolean;
  messages: boolean;
  quiet: boolean;
  passes?: boolean;
  probeTarget?: string;
  probeInterval?: number;
  location?: string | string[];
}

interface Column {
  title: string;
  right?: boolean;
}

/** Plain aligned text table (no box drawing: stays readable when piped or pasted). */
function renderTable(columns: Column[], rows: string[][], indent = '  '): string {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => indent + cells.map((text, i) => (columns[i].right ? text.padStart(widths[i]) : text.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(columns.map((c) => c.title)), ...rows.map(line)].join('\n') + '\n';
}

function bytesText(n: number): string {
  const mib = n / 1_048_576;
  return mib >= 1 ? `${(n / 1e6).toFixed(1)} MB (${mib.toFixed(1)} MiB)` : `${(n / 1e3).toFixed(1)} kB`;
}

const seconds = (s: number | undefined, digits = 6): string => (s === undefined ? '–' : s.toFixed(digits));

export function migrationText(record: MigrationRecord, captureStart: Timestamp | undefined): string {
  const out: string[] = [];
  const what = [record.mode, record.live === undefined ? undefined : record.live ? 'live' : 'offline', record.postcopy ? 'post-copy' : undefined].filter(Boolean).join(', ');
  out.push(`migration ${record.index}: ${record.domain ?? '(domain unknown)'}${record.uuid ? ` (${record.uuid})` : ''}  ${record.source} → ${record.destination}  ${what}  ${record.outcome.toUpperCase()}`);
  if (record.reason) out.push(`  reason: ${record.reason}`);
  const digits = record.tsDigits;
  const rows = PHASES.flatMap((phase) => {
    const span = record.phases[phase];
    if (!span) return [];
    const start = parseTimestamp(span.start);
    return [[
      PHASE_LABELS[phase],
      isoTimestamp(start, digits),
      captureStart ? seconds(secondsBetween(captureStart, start)) : '',
      seconds(span.seconds),
      span.startPacket !== undefined ? `${span.startPacket} → ${span.endPacket ?? '?'}` : '',
    ]];
  });
  if (rows.length > 0) {
    out.push(renderTable([{ title: 'phase' }, { title: 'start (UTC)' }, { title: 'capture +s', right: true }, { title: 'duration s', right: true }, { title: 'marker packets' }], rows).trimEnd());
  }
  const facts: string[] = [];
  facts.push(`migration time (libvirt) ${record.migrationTimeSec === undefined ? '– (no cleanup end)' : `${record.migrationTimeSec.toFixed(3)} s`}`);
  if (record.transfer) {
    facts.push(`data ${bytesText(record.transfer.bytes)} at ${(record.transfer.throughputBps / 1e6).toFixed(1)} MB/s`);
  }
  if (record.downtime) {
    const d = record.downtime;
    const gap = d.gapSec !== undefined ? `${(d.gapSec * 1000).toFixed(1)} ms (probe reply gap)` : !d.repliesVisible ? 'not measurable (no replies seen)' : '–';
    facts.push(`downtime ${gap}, ${d.probesLost}/${d.probesSent} probes lost`);
  }
  out.push(`  ${facts.join('  ·  ')}`);
  if (record.transfer?.connection) out.push(`  data connection ${record.transfer.connection}${record.transfer.migrateUri ? ` (migrate URI ${record.transfer.migrateUri})` : ''}`);
  if (record.stopAndCopy) out.push(`  stop-and-copy ${(record.stopAndCopy.seconds * 1000).toFixed(1)} ms, ${bytesText(record.stopAndCopy.bytes)}${record.passes ? `, after ${record.passes.length} pre-copy pass(es)` : ''}`);
  for (const w of record.warnings) out.push(`  warning: ${w}`);
  return out.join('\n') + '\n';
}

/** Marker messages and phase edges in time order: a sequence diagram in text. */
export function timelineText(record: MigrationRecord, detail: MigrationDetail): string {
  const origin = parseTimestamp(record.start);
  const digits = record.tsDigits;
  interface Line { at: Timestamp; order: number; text: string }
  const lines: Line[] = [];
  for (const phase of PHASES) {
    const span = record.phases[phase];
    if (!span) continue;
    lines.push({ at: parseTimestamp(span.start), order: 2, text: `── ${PHASE_LABELS[phase]} begins` });
    lines.push({ at: parseTimestamp(span.end), order: 1, text: `── ${PHASE_LABELS[phase]} ends (${seconds(span.seconds)} s)` });
  }
  for (const m of detail.markers) {
    const type = MESSAGE_TYPE_NAMES[m.type] ?? String(m.type);
    const status = MESSAGE_STATUS_NAMES[m.status] ?? String(m.status);
    lines.push({ at: m.at, order: 0, text: `#${m.packet}  ${m.from} → ${m.to}  ${m.program} ${m.procedure} ${type} serial ${m.serial} ${status}${m.note ? `  "${m.note}"` : ''}` });
  }
  if (detail.tunnel) {
    lines.push({ at: detail.tunnel.firstAt, order: 0, text: `#${detail.tunnel.firstPacket}  first tunnelled STREAM data (serial ${detail.tunnel.serial})` });
    lines.push({ at: detail.tunnel.lastAt, order: 0, text: `#${detail.tunnel.lastPacket}  last STREAM message: ${detail.tunnel.messages} messages, ${bytesText(detail.tunnel.bytes)}` });
  } else if (detail.dataFlow) {
    const f = detail.dataFlow.flow;
    lines.push({ at: f.firstSeen, order: 0, text: `#${f.firstPacket}  ${f.client.ip}:${f.client.port} → ${f.server.ip}:${f.server.port}  QEMU data connection opens` });
    const d = detail.dataFlow;
    lines.push({ at: d.closeAt ?? d.lastAt, order: 0, text: `#${d.closePacket ?? d.lastPacket}  QEMU data connection ${d.closeAt ? `closes (${d.end ?? 'fin'})` : `last data (${d.end ?? 'open'})`}` });
  }
  lines.sort((a, b) => secondsBetween(b.at, a.at) || a.order - b.order);
  return lines.map((l) => `  ${formatTimestamp(l.at, digits)}  +${seconds(secondsBetween(origin, l.at))}  ${l.text}`).join('\n') + '\n';
}

export const MESSAGE_TSV_COLUMNS = ['frame', 'epoch', 'ip.src', 'srcport', 'ip.dst', 'dstport', 'program', 'version', 'procedure', 'type', 'serial', 'status', 'length', 'name', 'error'];

/** Every libvirt message, the columns of the tshark oracle files plus the procedure name. */
export function messagesTsv(analysis: CaptureAnalysis): string {
  const digits = analysis.summary.tsDigits;
  const rows = (analysis.libvirtMessages ?? []).map(({ message: m, src, srcPort, dst, dstPort }) =>
    [m.packet, formatTimestamp(m.at, digits), src, srcPort, dst, dstPort, `0x${m.program.toString(16).padStart(8, '0')}`, m.version, m.procedure, m.type, m.serial, m.status, m.length, procedureName(m.program, m.procedure), m.error?.message ?? ''].join('\t'),
  );
  return [MESSAGE_TSV_COLUMNS.join('\t'), ...rows].join('\n') + '\n';
}

function captureHeader(a: CaptureAnalysis): string {
  const s = a.summary;
  const parts = [s.format ?? 'capture', `${s.packets} packets`, `${s.tcpFlows} TCP flows`, `${s.libvirtConnections} libvirt connection(s)`, `${s.libvirtMessages} libvirt messages`, `${a.records.length} migration(s)`];
  let text = `${a.file}: ${parts.join(', ')}\n`;
  for (const o of s.opaqueConnections) text += `  ${o.kind.toUpperCase()} connection ${o.client} → ${o.server} ${o.start} … ${o.end}, ${o.bytes} bytes: encrypted, not decodable (may carry libvirt)\n`;
  return text;
}

/** Exit code of one capture: 2 unreadable, 3 damaged, 4 a migration failed / incomplete. */
export function analysisExitCode(a: CaptureAnalysis): number {
  let exit: number = ExitCode.ok;
  if (a.problems.length > 0 || a.summary.incomplete) exit = a.summary.packets === 0 ? ExitCode.unreadable : ExitCode.partial;
  if (a.records.some((r) => r.outcome !== 'completed')) exit = Math.max(exit, ExitCode.migrationFailed);
  return exit;
}

export async function runAnalyze(args: AnalyzeArgs, enrichers: readonly MigrationEnricher[] = defaultEnrichers({ probeTarget: args.probeTarget, probeIntervalMs: args.probeInterval })): Promise<number> {
  const analyses: CaptureAnalysis[] = [];
  let exit: number = ExitCode.ok;
  const showProgress = process.stderr.isTTY === true && !args.quiet;
  for (const file of args.captures) {
    let analysis: CaptureAnalysis;
    try {
      analysis = await analyzeCapture(file, {
        messages: args.messages,
        enrichers,
        locations: args.location === undefined ? undefined : ([] as string[]).concat(args.location).flatMap((l) => l.split(',')),
        onProgress: showProgress ? (read, total) => process.stderr.write(`\r${file}: ${total ? `${Math.floor((100 * read) / total)}%` : `${(read / 1e6).toFixed(0)} MB`}   `) : undefined,
      });
    } catch (err) {
      if (showProgress) process.stderr.write('\r\x1b[K');
      process.stderr.write(`migscope: ${file}: unreadable: ${(err as Error).message}\n`);
      exit = Math.max(exit, ExitCode.unreadable);
      continue;
    }
    if (showProgress) process.stderr.write('\r\x1b[K');
    for (const problem of analysis.problems.slice(0, 20)) process.stderr.write(`migscope: ${problem.message}\n`);
    if (analysis.problems.length > 20) process.stderr.write(`migscope: … ${analysis.problems.length - 20} more problems\n`);
    exit = Math.max(exit, analysisExitCode(analysis));
    analyses.push(analysis);
    if (args.json || args.csv || args.quiet) continue;
    if (args.messages) {
      process.stdout.write(messagesTsv(analysis));
      continue;
    }
    process.stdout.write(captureHeader(analysis));
    const captureStart = analysis.summary.first ? parseTimestamp(analysis.summary.first) : undefined;
    analysis.records.forEach((record, i) => {
      process.stdout.write('\n' + migrationText(record, captureStart));
      if (args.timeline) process.stdout.write('\n' + timelineText(record, analysis.details[i]));
      if (args.passes && record.passes) process.stdout.write('\n' + formatPassTable(record.passes, record.stopAndCopy, record.start));
    });
    if (analysis.records.length === 0) process.stdout.write('  no migration found\n');
  }
  if (args.json) {
    const out = analyses.map((a) => ({ file: a.file, summary: a.summary, records: a.records, problems: a.problems.map((p) => p.toJSON()) }));
    process.stdout.write(`${JSON.stringify(out.length === 1 ? out[0] : out, null, 1)}\n`);
  } else if (args.csv) {
    process.stdout.write(recordsToCsv(analyses.flatMap((a) => a.records)));
  }
  return exit;
}


export const analyzeCommand: CommandModule<object, AnalyzeArgs> = {
  command: 'analyze <captures..>',
  describe: 'find the VM migrations in captures: phases, migration time, transfer, downtime (table, --json, --csv)',
  builder: (y) =>
    y
      .positional('captures', { type: 'string', array: true, demandOption: true, describe: "pcap/pcapng/DPMI files, gzip ok, '-' = stdin" })
      .option('json', { type: 'boolean', describe: 'one JSON object per capture (records = MigrationRecord[])' })
      .option('csv', { type: 'boolean', describe: 'one CSV row per migration (the columns `report` reads)' })
      .option('timeline', { type: 'boolean', default: false, describe: 'also print the marker messages of each migration as a text sequence diagram' })
      .option('messages', { type: 'boolean', default: false, describe: 'print every libvirt RPC message (TSV, the columns of tshark -T fields)' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print nothing; exit code only' })
      // not array: true, which would swallow the capture names after it; repeat it or use commas
      .option('location', { type: 'string', describe: "analyse only these measurement locations (DPMI 'mp:nic', pcapng interface name or id; '*' patterns; comma-separated or repeated)" })
      .option('passes', { type: 'boolean', default: false, describe: 'also print the pre-copy passes and the stop-and-copy decoded from the QEMU stream' })
      .option('probe-target', { type: 'string', describe: 'IP the downtime probes (pings) go to (default: the target probed most during the migration)' })
      .option('probe-interval', { type: 'number', describe: 'probe interval in ms (default: the median gap between echo requests)' })
      .conflicts('json', 'csv')
      .epilog('Exit codes: 0 all migrations completed; 1 usage; 2 unreadable input; 3 damaged input (partial results);\n4 a migration failed, was cancelled or is incomplete in the capture. Several captures: the highest code.'),
  handler: async (args) => {
    process.exitCode = await runAnalyze({ ...args, captures: capturesWithStdin('analyze', args.captures, ['--probe-target', '--probe-interval', '--location']) });
  },
};
