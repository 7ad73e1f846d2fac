// `migscope live -i <interface>`: watch a mirror port and print each migration's phase table the
// moment it completes or fails. Thin: tcpdump child (capture/live.ts) → optional pcapng tee
// (capture/live-writer.ts) → the same analyzer as `analyze` (createAnalyzer) → analyze's
// formatter. Ctrl-C / SIGTERM: migrations still open are printed as partial, files closed, exit 0.
import type { CommandModule } from 'yargs';
import { ExitCode } from '../core/errors';
import { addSeconds, parseTimestamp, type Timestamp } from '../core/timestamp';
import { canCaptureAsThisProcess, DEFAULT_BUFFER_KIB, DropLedger, LiveCapture, LiveCaptureError, listCaptureDevices, type CaptureCounters, type CaptureInstant } from '../capture/live';
import { RotatingPcapngWriter, WritingSink } from '../capture/live-writer';
import type { PacketSink } from '../capture/types';
import { createAnalyzer, type MigrationEnricher } from '../migration/analyze-capture';
import { defaultEnrichers } from '../migration/enrichers';
import { ProbeEnricher } from '../protocols/icmp/enricher';
import type { MigrationRecord } from '../migration/record';
import type { MigrationDetail } from '../migration/timeline';
import type { Pipeline } from '../flow/pipeline';
import { migrationText } from './analyze';

export interface LiveArgs {
  interface?: string;
  list?: boolean;
  filter?: string;
  write?: string;
  rotateMb?: number;
  rotateFiles?: number;
  tcpdump?: string;
  bufferKib?: number;
  statsInterval?: number; // seconds
  settle?: number; // seconds of capture after a migration's end before it is printed
  json?: boolean;
  probeTarget?: string;
  probeInterval?: number;
}

/** Where the command writes; tests pass their own. */
export interface LiveOutput {
  out(text: string): void; // results (tables or JSON lines)
  err(text: string): void; // progress, warnings, the final summary
}

const processOutput: LiveOutput = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

/** Checks the options that do not need a capture; returns an error message or undefined. */
export function validateLiveArgs(args: LiveArgs): string | undefined {
  if (args.list) return undefined;
  if (!args.interface) return 'name the interface to capture on: -i <interface> (see --list)';
  if (args.rotateMb !== undefined && !(args.rotateMb > 0)) return '--rotate-mb must be a positive number of megabytes';
  if (args.rotateFiles !== undefined && !(Number.isInteger(args.rotateFiles) && args.rotateFiles > 0)) return '--rotate-files must be a positive whole number';
  if ((args.rotateMb !== undefined || args.rotateFiles !== undefined) && !args.write) return '--rotate-mb/--rotate-files need --write <file.pcapng>';
  if (args.rotateFiles !== undefined && args.rotateMb === undefined) return '--rotate-files needs --rotate-mb (files rotate by size)';
  if (args.bufferKib !== undefined && !(Number.isInteger(args.bufferKib) && args.bufferKib > 0)) return '--buffer-kib must be a positive whole number';
  if (args.statsInterval !== undefined && !(args.statsInterval >= 0)) return '--stats-interval must be ≥ 0 seconds';
  if (args.settle !== undefined && !(args.settle >= 0)) return '--settle must be ≥ 0 seconds';
  return undefined;
}

function nowInstant(): CaptureInstant {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), ps: (ms % 1000) * 1_000_000_000 };
}

/** TCP holes given up in the flows that carried this migration (control and data connection). */
function migrationGaps(pipeline: Pipeline, detail: MigrationDetail): { gaps: number; bytes: number } {
  const ids = new Set<number>([detail.controlFlow.id]);
  if (detail.dataFlow) ids.add(detail.dataFlow.flow.id);
  let gaps = 0;
  let bytes = 0;
  for (const id of ids) {
    const flow = pipeline.flows[id - 1];
    if (!flow) continue;
    for (const s of flow.stats) {
      gaps += s.gaps;
      bytes += s.gapBytes;
    }
  }
  return { gaps, bytes };
}

/** The reliability warnings of one migration: kernel drops since its start, TCP gaps in its flows. */
export function reliabilityWarnings(dropsSinceStart: number, gaps: { gaps: number; bytes: number }): string[] {
  const warnings: string[] = [];
  if (dropsSinceStart > 0) {
    warnings.push(`unreliable: the kernel dropped ${dropsSinceStart} packet(s) during this migration (capture buffer overflow): its byte counts and timings may be wrong`);
  }
  if (gaps.gaps > 0) warnings.push(`unreliable: ${gaps.gaps} TCP gap(s), ${gaps.bytes} bytes never captured, in this migration's connections`);
  return warnings;
}

export async function runLive(args: LiveArgs, output: LiveOutput = processOutput, enrichers?: readonly MigrationEnricher[]): Promise<number> {
  const invalid = validateLiveArgs(args);
  if (invalid) {
    output.err(`migscope live: ${invalid}\n`);
    return ExitCode.usage;
  }
  if (args.list) return listInterfaces(args, output);
  const iface = args.interface!;
  const name = `live:${iface}`;

  interface Emitted { record: MigrationRecord; detail: MigrationDetail; partial: boolean; due?: CaptureInstant }
  const settling: Emitted[] = []; // waiting for `settle` seconds of capture after their end
  const pending: Emitted[] = []; // waiting for tcpdump's next counters report
  let shuttingDown = false;
  let captureStart: Timestamp | undefined;
  const ledger = new DropLedger();
  let printed = 0;
  let unreliable = 0;
  const settleSec = args.settle ?? 1;

  const chosenEnrichers = enrichers ?? defaultEnrichers({ probeTarget: args.probeTarget, probeIntervalMs: args.probeInterval });
  const analyzer = createAnalyzer(name, {
    enrichers: chosenEnrichers,
    onMigration: (record, detail) => {
      const emitted: Emitted = { record, detail, partial: shuttingDown && record.outcome !== 'completed' };
      if (shuttingDown || settleSec <= 0 || !record.end) return ready(emitted);
      emitted.due = addSeconds(parseTimestamp(record.end), settleSec);
      settling.push(emitted);
      // A quiet link may bring no later packet: settle by the wall clock as well.
      setTimeout(() => settled(emitted), (settleSec + 2) * 1000).unref();
    },
  });

  /** Probe figures need the replies that come after the end (RTT after, late replies): with
   *  those packets in, the probe enrichers fill the record again, as analyze does at its end. */
  const settled = (emitted: Emitted): void => {
    const at = settling.indexOf(emitted);
    if (at < 0) return;
    settling.splice(at, 1);
    for (const e of chosenEnrichers) if (e instanceof ProbeEnricher) e.enrich(emitted.record);
    ready(emitted);
  };

  const ready = (emitted: Emitted): void => {
    pending.push(emitted);
    // Drops are known only from tcpdump's next counters report: ask for one now.
    if (!shuttingDown && (args.statsInterval ?? 1) > 0) {
      capture.requestCounters();
      setTimeout(printPending, 2000).unref(); // in case no report comes
    } else printPending();
  };

  const printPending = (): void => {
    while (pending.length > 0) {
      const { record, detail, partial } = pending.shift()!;
      const warnings = reliabilityWarnings(ledger.droppedSince(parseTimestamp(record.start)), migrationGaps(analyzer.pipeline, detail));
      record.warnings.push(...warnings);
      if (warnings.length > 0) unreliable++;
      if (partial) record.warnings.push('partial: the capture stopped before this migration ended');
      printed++;
      if (args.json) {
        output.out(`${JSON.stringify({ type: 'migration', partial, reliable: warnings.length === 0, record })}\n`);
      } else {
        output.out(`\n${partial ? '[PARTIAL] ' : ''}${migrationText(record, captureStart)}`);
      }
    }
  };

  const capture = new LiveCapture({
    interface: iface,
    filter: args.filter,
    tcpdump: args.tcpdump,
    bufferKib: args.bufferKib,
    statsIntervalMs: Math.round((args.statsInterval ?? 1) * 1000),
  });
  let packetsSeen = 0;
  let lastCountersLine = '';
  const onCounters = (counters: CaptureCounters): void => {
    ledger.report(counters.droppedByKernel + (counters.droppedByInterface ?? 0), nowInstant());
    // A heartbeat for monitors (and the rate harness): how far analysis has got, drops so far.
    if (args.json && !shuttingDown) {
      const line = JSON.stringify({ type: 'counters', analysedPackets: packetsSeen, ...counters });
      if (line !== lastCountersLine) output.out(`${line}\n`); // only when something moved
      lastCountersLine = line;
    }
    printPending();
  };
  capture.onCounters = onCounters;
  capture.onListening = (info) => output.err(`migscope live: listening on ${info.interface}, link type ${info.linkType}${args.filter ? `, filter "${args.filter}"` : ''}${args.write ? `, writing ${args.write}${args.rotateMb ? ` (rotating every ${args.rotateMb} MB${args.rotateFiles ? `, keeping ${args.rotateFiles} files` : ''})` : ''}` : ''}\n`);

  let writer: RotatingPcapngWriter | undefined;
  let sink: PacketSink = analyzer.pipeline;
  if (args.write) {
    writer = new RotatingPcapngWriter(
      args.write,
      { rotateBytes: args.rotateMb ? Math.round(args.rotateMb * 1e6) : undefined, maxFiles: args.rotateFiles },
      { userAppl: 'migscope live (tcpdump)', comment: `live capture on ${iface}${args.filter ? ` with filter "${args.filter}"` : ''}` },
    );
    sink = new WritingSink(writer, analyzer.pipeline, (err) => output.err(`migscope live: writing ${args.write} failed, analysis goes on without it: ${err.message}\n`), iface);
  }
  // The first packet's time anchors the "capture +s" column, as in analyze.
  const downstream = sink;
  const earlyProblems: string[] = [];
  sink = {
    interface: (i) => downstream.interface?.(i),
    problem: (p) => {
      // Before any packet a problem is most likely tcpdump failing (an empty pipe): its own
      // message explains better, so these wait until the capture proves to have started.
      if (captureStart) output.err(`migscope live: ${p.message}\n`);
      else earlyProblems.push(p.message);
      downstream.problem?.(p);
    },
    packet: (r) => {
      if (packetsSeen++ === 0) captureStart = { sec: r.sec, ps: r.ps };
      downstream.packet(r);
      const next = settling[0];
      if (next?.due && (r.sec > next.due.sec || (r.sec === next.due.sec && r.ps >= next.due.ps))) settled(next);
    },
  };

  const stop = (): void => capture.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // A quiet link leaves the last packets in the writer's buffer: flush now and then.
  const flushTimer = writer ? setInterval(() => writer!.flush(), 2000) : undefined;
  flushTimer?.unref();
  let exit: number = ExitCode.ok;
  try {
    if (!canCaptureAsThisProcess()) output.err('migscope live: not root and no CAP_NET_RAW: capture works only if tcpdump has file capabilities\n');
    const result = await capture.run(sink);
    shuttingDown = true;
    for (const message of earlyProblems) output.err(`migscope live: ${message}\n`);
    if (result.counters) onCounters(result.counters);
    const analysis = analyzer.finish(); // emits what is still open, as partial; fills probe figures
    for (const emitted of settling.splice(0)) ready(emitted);
    printPending();
    if (!result.stoppedByUser) {
      output.err(`migscope live: tcpdump ended by itself (exit ${result.exitCode})${result.stderr ? `: ${result.stderr.trim()}` : ''}\n`);
      exit = ExitCode.partial;
    }
    const gaps = analysis.summary.tcpFlows > 0 ? analyzer.pipeline.flows.reduce((n, f) => n + f.stats[0].gaps + f.stats[1].gaps, 0) : 0;
    const c = result.counters;
    const summary = {
      type: 'summary',
      interface: iface,
      packets: analysis.summary.packets,
      tcpFlows: analysis.summary.tcpFlows,
      libvirtMessages: analysis.summary.libvirtMessages,
      migrations: printed,
      unreliableMigrations: unreliable,
      kernelDrops: c?.droppedByKernel,
      interfaceDrops: c?.droppedByInterface,
      receivedByFilter: c?.receivedByFilter,
      tcpGaps: gaps,
      files: writer?.files ?? [],
      problems: analysis.problems.map((p) => p.message),
    };
    if (args.json) output.out(`${JSON.stringify(summary)}\n`);
    output.err(
      `migscope live: ${summary.packets} packets, ${summary.migrations} migration(s) (${unreliable} unreliable), ` +
        `kernel drops ${c ? c.droppedByKernel : 'unknown'}${c?.droppedByInterface ? `, interface drops ${c.droppedByInterface}` : ''}, TCP gaps ${gaps}` +
        `${writer ? `, wrote ${writer.packets} packets to ${writer.files.length} file(s)` : ''}\n`,
    );
  } catch (err) {
    if (!(err instanceof LiveCaptureError)) throw err;
    output.err(`migscope live: ${err.message}\n`);
    exit = ExitCode.unreadable;
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    if (flushTimer) clearInterval(flushTimer);
    writer?.close();
  }
  return exit;
}

function listInterfaces(args: LiveArgs, output: LiveOutput): number {
  try {
    const devices = listCaptureDevices(args.tcpdump);
    const width = Math.max(9, ...devices.map((d) => d.name.length));
    output.out(`${'interface'.padEnd(width)}  flags / description\n`);
    for (const d of devices) output.out(`${d.name.padEnd(width)}  ${[d.flags.join(', '), d.description].filter(Boolean).join('  ')}\n`);
    return ExitCode.ok;
  } catch (err) {
    if (!(err instanceof LiveCaptureError)) throw err;
    output.err(`migscope live: ${err.message}\n`);
    return ExitCode.unreadable;
  }
}

export const liveCommand: CommandModule<object, LiveArgs> = {
  command: 'live',
  describe: 'watch an interface (mirror port): print each migration as it completes; Ctrl-C ends (exit 0)',
  builder: (y) =>
    y
      .option('interface', { alias: 'i', type: 'string', describe: 'interface to capture on (see --list)' })
      .option('list', { type: 'boolean', describe: 'list the interfaces tcpdump can capture on' })
      .option('filter', { alias: 'f', type: 'string', describe: 'BPF capture filter (tcpdump syntax), e.g. "tcp or icmp"' })
      .option('write', { alias: 'w', type: 'string', describe: 'also write the packets to this pcapng file' })
      .option('rotate-mb', { type: 'number', describe: 'with --write: start a new file every N MB (name-000001.pcapng, …)' })
      .option('rotate-files', { type: 'number', describe: 'with --rotate-mb: keep only the newest K files' })
      .option('json', { type: 'boolean', default: false, describe: 'JSON lines: {type:"migration",record} as each completes, {type:"counters"} at each drop poll, {type:"summary"} at the end' })
      .option('tcpdump', { type: 'string', default: 'tcpdump', describe: 'tcpdump binary to run' })
      .option('buffer-kib', { type: 'number', default: DEFAULT_BUFFER_KIB, describe: 'kernel capture buffer, KiB (tcpdump -B)' })
      .option('stats-interval', { type: 'number', default: 1, describe: 'seconds between drop-counter polls (0: only at exit)' })
      .option('settle', { type: 'number', default: 1, describe: 'seconds of capture after a migration ends before printing it (late probe replies, RTT after); 0 = at once' })
      .option('probe-target', { type: 'string', describe: 'IP the downtime probes (pings) go to' })
      .option('probe-interval', { type: 'number', describe: 'probe interval in ms' })
      .epilog(
        'Runs `tcpdump -w -` (root or CAP_NET_RAW needed) and analyses its pcap stream with the code of `analyze`.\n' +
          'Migrations with kernel drops or TCP gaps during them are flagged "unreliable" (a warning in the record).\n' +
          'Exit codes: 0 stopped by Ctrl-C/SIGTERM; 1 usage; 2 could not capture (permission, interface, filter, no tcpdump); 3 tcpdump ended by itself.',
      ),
  handler: async (args) => {
    process.exitCode = await runLive(args);
  },
};
