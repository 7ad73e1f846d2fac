// The analyze pipeline: capture → flows → libvirt RPC + migration data connection (+ QEMU
// stream, ICMP probes when their modules are given) → timeline → MigrationRecords.
// `createAnalyzer` is the incremental form (a Pipeline to feed, migrations via callback, for
// live capture); `analyzeCapture` is the batch wrapper over a file.
import { CaptureProblem } from '../core/errors';
import { formatTimestamp, type Timestamp } from '../core/timestamp';
import { Pipeline, type PacketObserver, type PipelineResult } from '../flow/pipeline';
import { readCapture } from '../capture/reader';
import { locationSinks } from '../capture/location';
import type { CaptureFormat, CaptureInterface } from '../capture/types';
import type { ProtocolDetector } from '../flow/stream-consumer';
import type { LibvirtConversation } from '../protocols/libvirt/conversation';
import { libvirtDetector, type OpaqueConnection } from '../protocols/libvirt/detector';
import type { LibvirtMessage } from '../protocols/libvirt/rpc';
import { CurrentPacket, dataConnectionDetector } from './data-connection';
import { defaultEnrichers } from './enrichers';
import type { MigrationRecord } from './record';
import { TimelineBuilder, type MigrationDetail } from './timeline';

/** Adds QEMU-stream / probe figures to a finished record (the "qemu" module plugs in here). */
export interface MigrationEnricher {
  /** Detectors for the QEMU stream: offered the native data connection and tunnelled bytes. */
  readonly detectors?: readonly ProtocolDetector[];
  /** Packet observers (ICMP probes, ARP/RARP). */
  readonly observers?: readonly PacketObserver[];
  /** Fill downtime / passes / stopAndCopy of `record` (called once per migration). */
  enrich(record: MigrationRecord, detail: MigrationDetail): void;
}

export interface AnalyzeOptions {
  /** Keep every libvirt message (for `analyze --messages` and the oracle tests). */
  messages?: boolean;
  /** Default: defaultEnrichers() (QEMU stream passes, probe downtime); [] for libvirt only. */
  enrichers?: readonly MigrationEnricher[];
  /** Called as each migration completes (before analyzeCapture returns). */
  onMigration?: (record: MigrationRecord, detail: MigrationDetail) => void;
  onProgress?(bytesRead: number, totalBytes: number | undefined): void;
  /** false (live): records only go to onMigration; finished state is dropped. Default true. */
  retain?: boolean;
  /** `--location` selectors (DPMI "mp:nic", pcapng interface names or ids): analyse only these
   *  measurement locations; a frame seen at two selected locations counts once. */
  locations?: readonly string[];
}

/** One libvirt message with its connection, as `--messages` prints it. */
export interface LibvirtMessageRow {
  message: LibvirtMessage;
  src: string; // ip
  srcPort: number;
  dst: string;
  dstPort: number;
}

export interface CaptureAnalysisSummary {
  format?: CaptureFormat;
  packets: number;
  bytesRead?: number;
  interfaces: CaptureInterface[];
  first?: string;
  last?: string;
  tsDigits: number;
  tcpFlows: number;
  libvirtConnections: number;
  libvirtMessages: number;
  /** TLS / SSH connections that may carry libvirt: reported with timings, not decoded. */
  opaqueConnections: { kind: string; client: string; server: string; start: string; end: string; bytes: number }[];
  incomplete: boolean;
}

export interface CaptureAnalysis {
  file: string;
  records: MigrationRecord[];
  details: MigrationDetail[];
  summary: CaptureAnalysisSummary;
  problems: CaptureProblem[];
  libvirtMessages?: LibvirtMessageRow[];
}

export interface Analyzer {
  /** Feed packets here (a PacketSink). */
  readonly pipeline: Pipeline;
  readonly timeline: TimelineBuilder;
  /** End of input: flush flows, emit the remaining migrations, collect the results. */
  finish(): CaptureAnalysis;
}

export function createAnalyzer(file: string, options: AnalyzeOptions = {}): Analyzer {
  const problems: CaptureProblem[] = [];
  const conversations: LibvirtConversation[] = [];
  let libvirtConnections = 0; // counted instead of kept when not retaining
  const rows: LibvirtMessageRow[] | undefined = options.messages ? [] : undefined;
  const enrichers = options.enrichers ?? defaultEnrichers();
  const timeline = new TimelineBuilder({
    capture: file,
    retain: options.retain,
    onMigration: (record, detail) => {
      for (const e of enrichers) e.enrich(record, detail);
      options.onMigration?.(record, detail);
    },
  });
  const current = new CurrentPacket();
  const qemuDetectors = enrichers.flatMap((e) => e.detectors ?? []);
  const libvirt = libvirtDetector(
    {
      conversation: (conv) => {
        if (options.retain !== false) conversations.push(conv);
        else libvirtConnections++;
        timeline.conversation(conv);
      },
      message: (conv, msg) => {
        if (rows) {
          const [a, b] = msg.dir === 0 ? [conv.flow.client, conv.flow.server] : [conv.flow.server, conv.flow.client];
          rows.push({ message: msg, src: a.ip, srcPort: a.port, dst: b.ip, dstPort: b.port });
        }
        timeline.message(conv, msg);
      },
      end: (conv) => timeline.conversationEnd(conv),
      opaque: (conn: OpaqueConnection) => timeline.opaqueConnection(conn),
      problem: (conv, detail, _at: Timestamp, packet) => problems.push(new CaptureProblem('protocol', file, `libvirt ${conv.client} → ${conv.server}: ${detail}`, packet)),
    },
    { tunnelDetectors: qemuDetectors },
  );
  const pipeline = new Pipeline(file, {
    detectors: [libvirt, dataConnectionDetector(timeline, current, qemuDetectors)],
    observers: [current, ...enrichers.flatMap((e) => e.observers ?? [])],
  });
  // Instants are written at the capture's own resolution (the finest of its interfaces).
  let sawInterface = false;
  const addInterface = pipeline.interface.bind(pipeline);
  pipeline.interface = (iface: CaptureInterface) => {
    timeline.tsDigits = sawInterface ? Math.max(timeline.tsDigits, iface.tsDigits) : iface.tsDigits;
    sawInterface = true;
    addInterface(iface);
  };

  return {
    pipeline,
    timeline,
    finish(): CaptureAnalysis {
      const result = pipeline.finish();
      timeline.finish();
      const analysis = collect(file, result, timeline, conversations, problems, rows);
      analysis.summary.libvirtConnections += libvirtConnections;
      return analysis;
    },
  };
}

function collect(
  file: string,
  result: PipelineResult,
  timeline: TimelineBuilder,
  conversations: LibvirtConversation[],
  protocolProblems: CaptureProblem[],
  rows: LibvirtMessageRow[] | undefined,
): CaptureAnalysis {
  const digits = timeline.tsDigits;
  if (rows) rows.sort((x, y) => x.message.packet - y.message.packet || x.message.streamOffset - y.message.streamOffset);
  const summary: CaptureAnalysisSummary = {
    format: result.capture?.format,
    packets: result.stats.packets,
    bytesRead: result.capture?.bytesRead,
    interfaces: result.interfaces,
    first: result.first ? formatTimestamp(result.first, digits) : undefined,
    last: result.last ? formatTimestamp(result.last, digits) : undefined,
    tsDigits: digits,
    tcpFlows: result.flows.length,
    libvirtConnections: conversations.length,
    libvirtMessages: conversations.reduce((n, c) => n + c.messageCount, 0),
    opaqueConnections: timeline.opaque.map((o) => ({
      kind: o.kind,
      client: `${o.flow.client.ip}:${o.flow.client.port}`,
      server: `${o.flow.server.ip}:${o.flow.server.port}`,
      start: formatTimestamp(o.times.firstAt, digits),
      end: formatTimestamp(o.times.lastAt, digits),
      bytes: o.times.bytes[0] + o.times.bytes[1],
    })),
    incomplete: result.capture?.incomplete ?? false,
  };
  return {
    file,
    records: timeline.records,
    details: timeline.details,
    summary,
    problems: [...result.problems, ...protocolProblems],
    libvirtMessages: rows,
  };
}

/** Analyze one capture file (pcap, pcapng, DPMI; gzip; '-' = stdin). */
export async function analyzeCapture(file: string, options: AnalyzeOptions = {}): Promise<CaptureAnalysis> {
  const analyzer = createAnalyzer(file, options);
  const selected = options.locations?.length ? locationSinks(analyzer.pipeline, { locations: options.locations }) : undefined;
  const capture = await readCapture(file, selected?.sink ?? analyzer.pipeline, { onProgress: options.onProgress });
  const analysis = analyzer.finish();
  const unmatched = selected?.filter?.unmatchedSelectors() ?? [];
  if (unmatched.length > 0) {
    const names = capture.interfaces.map((i) => i.name ?? String(i.id)).join(', ');
    analysis.problems.push(new CaptureProblem('unreadable', file, `--location ${unmatched.join(', ')} matches no location (locations: ${names})`));
  }
  analysis.summary.format = capture.format;
  analysis.summary.bytesRead = capture.bytesRead;
  analysis.summary.incomplete = capture.incomplete;
  for (const problem of capture.problems) if (!analysis.problems.includes(problem)) analysis.problems.unshift(problem);
  return analysis;
}
