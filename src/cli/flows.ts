// `migscope flows <capture...>`: the TCP conversations of each capture with transport statistics,
// as a terminal table, JSON or CSV. Thin: options → runPipeline → src/flow/summary.
import type { CommandModule } from 'yargs';
import { capturesWithStdin } from './stdin-args';
import { ExitCode } from '../core/errors';
import type { PipelineResult } from '../flow/pipeline';
import { runPipeline } from '../flow/pipeline';
import { summarizeFlow, type DirectionSummary, type FlowSummary } from '../flow/summary';

interface FlowsArgs {
  captures: string[];
  json?: boolean;
  csv?: boolean;
  quiet: boolean;
}

export interface CaptureFlows {
  file: string;
  format?: string;
  packets: number;
  tcpPackets: number;
  snaplenCut: number;
  malformed: number;
  start?: string;
  incomplete: boolean;
  problems: string[];
  flows: FlowSummary[];
}

export function captureFlows(result: PipelineResult): CaptureFlows {
  const digits = result.interfaces.reduce((d, i) => Math.max(d, i.tsDigits), 0) || 9;
  const first = result.first;
  return {
    file: result.file,
    format: result.capture?.format,
    packets: result.stats.packets,
    tcpPackets: result.stats.tcpPackets,
    snaplenCut: result.stats.decode.snaplenCut,
    malformed: result.stats.decode.malformed,
    start: first ? `${first.sec}.${String(first.ps).padStart(12, '0').slice(0, digits)}` : undefined,
    incomplete: result.capture?.incomplete ?? false,
    problems: result.problems.map((p) => p.message),
    flows: first ? result.flows.map((f) => summarizeFlow(f, first, digits)) : [],
  };
}

const CSV_COLUMNS = [
  'file', 'id', 'client', 'server', 'protocol', 'handshake', 'start', 'end', 'relative_start_s', 'duration_s', 'handshake_rtt_s', 'end_reason',
  ...['c2s', 's2c'].flatMap((d) => [
    `${d}_packets`, `${d}_bytes`, `${d}_payload_bytes`, `${d}_stream_bytes`, `${d}_retransmissions`, `${d}_out_of_order`,
    `${d}_duplicate_acks`, `${d}_zero_windows`, `${d}_gaps`, `${d}_gap_bytes`, `${d}_throughput_Bps`,
  ]),
];

function directionCells(d: DirectionSummary): (number | string)[] {
  return [d.packets, d.bytes, d.payloadBytes, d.streamBytes, d.retransmissions, d.outOfOrder, d.duplicateAcks, d.zeroWindows, d.gaps, d.gapBytes, d.throughputBps ?? ''];
}

export function flowsCsv(captures: CaptureFlows[]): string {
  const rows = captures.flatMap((c) =>
    c.flows.map((f) => [
      c.file, f.id, `${f.client.ip}:${f.client.port}`, `${f.server.ip}:${f.server.port}`, f.protocol ?? '', f.handshakeSeen, f.start, f.end,
      f.relativeStartSec, f.durationSec, f.handshakeRttSec ?? '', f.endReason ?? '',
      ...directionCells(f.clientToServer), ...directionCells(f.serverToClient),
    ]),
  );
  // loaded on demand: start-up time counts when a capture is small
  const { stringify } = require('csv-stringify/sync') as typeof import('csv-stringify/sync');
  return stringify(rows, { header: true, columns: CSV_COLUMNS });
}

function humanBytes(n: number): string {
  if (n < 10_000) return `${n} B`;
  if (n < 10_000_000) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 10_000_000_000) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

function table(rows: string[][], rightAligned: boolean[]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (rightAligned[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n');
}

export function flowsTable(c: CaptureFlows): string {
  const header = ['#', 'client', 'server', 'pkts c→s', 'pkts s→c', 'bytes c→s', 'bytes s→c', 'rel start', 'duration', 'rtt ms', 'retx', 'ooo', 'dupack', 'zwin', 'gaps', 'MB/s c→s', 'end'];
  const rows = c.flows.map((f) => {
    const a = f.clientToServer;
    const b = f.serverToClient;
    return [
      String(f.id), `${f.client.ip}:${f.client.port}`, `${f.server.ip}:${f.server.port}`, String(a.packets), String(b.packets),
      humanBytes(a.bytes), humanBytes(b.bytes), f.relativeStartSec.toFixed(6), f.durationSec.toFixed(4),
      f.handshakeRttSec === undefined ? '–' : (f.handshakeRttSec * 1000).toFixed(3),
      String(a.retransmissions + b.retransmissions), String(a.outOfOrder + b.outOfOrder), String(a.duplicateAcks + b.duplicateAcks),
      String(a.zeroWindows + b.zeroWindows), a.gaps + b.gaps === 0 ? '0' : `${a.gaps + b.gaps} (${humanBytes(a.gapBytes + b.gapBytes)})`,
      a.throughputBps === undefined ? '–' : (a.throughputBps / 1e6).toFixed(2), f.endReason ?? '',
    ];
  });
  const title = `${c.file}: ${c.packets} packets (${c.tcpPackets} TCP), ${c.flows.length} TCP flows` +
    (c.snaplenCut ? `, ${c.snaplenCut} cut by the snaplen` : '') + (c.malformed ? `, ${c.malformed} malformed` : '');
  if (rows.length === 0) return `${title}\n`;
  return `${title}\n${table([header, ...rows], header.map((_, i) => i === 0 || i >= 3))}\n`;
}

export async function runFlows(args: FlowsArgs): Promise<number> {
  const results: CaptureFlows[] = [];
  let exit: number = ExitCode.ok;
  const showProgress = process.stderr.isTTY === true && !args.quiet;
  for (const file of args.captures) {
    let result: PipelineResult;
    let shown = '';
    const progress = (read: number, total: number | undefined) => {
      const text = total ? `${Math.floor((100 * read) / total)}%` : `${Math.floor(read / 1e7) * 10} MB`;
      if (text !== shown) process.stderr.write(`\r${file}: ${(shown = text)}   `); // only when it changes
    };
    try {
      result = await runPipeline(file, { onProgress: showProgress ? progress : undefined });
    } catch (err) {
      if (showProgress) process.stderr.write('\n');
      process.stderr.write(`migscope: ${file}: unreadable: ${(err as Error).message}\n`);
      exit = Math.max(exit, ExitCode.unreadable);
      continue;
    }
    if (showProgress) process.stderr.write('\r\x1b[K');
    const flows = captureFlows(result);
    for (const problem of flows.problems) process.stderr.write(`migscope: ${problem}\n`);
    if (flows.problems.length > 0 || flows.incomplete) {
      // nothing decoded at all (wrong magic, empty file) = unreadable; otherwise partial results
      exit = Math.max(exit, flows.packets === 0 ? ExitCode.unreadable : ExitCode.partial);
    }
    results.push(flows);
    if (!args.json && !args.csv && !args.quiet) process.stdout.write(flowsTable(flows));
  }
  if (args.json) process.stdout.write(`${JSON.stringify(results, null, 1)}\n`);
  else if (args.csv) process.stdout.write(flowsCsv(results));
  return exit;
}


export const flowsCommand: CommandModule<object, FlowsArgs> = {
  command: 'flows <captures..>',
  describe: 'list the TCP conversations of captures with transport statistics (table, --json or --csv)',
  builder: (y) =>
    y
      .positional('captures', { type: 'string', array: true, demandOption: true, describe: "pcap/pcapng/DPMI files, gzip ok, '-' = stdin" })
      // no defaults: yargs' conflicts() treats a defaulted option as given
      .option('json', { type: 'boolean', describe: 'print JSON (an array, one entry per capture)' })
      .option('csv', { type: 'boolean', describe: 'print CSV, one row per flow' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no table, no progress (exit code only)' })
      .conflicts('json', 'csv') as any,
  handler: async (args) => {
    process.exitCode = await runFlows({ ...args, captures: capturesWithStdin('flows', args.captures) });
  },
};
