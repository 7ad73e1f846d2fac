// `migscope convert <in> <out.pcapng>`: any capture migscope reads (pcap, pcapng, DPMI; gzip;
// '-' = stdin) → pcapng, losing nothing: one interface per source interface / DPMI location,
// if_tsresol as fine as the source (10^-12 for DPMI), the source's comment as shb_comment.
import type { CommandModule } from 'yargs';
import { CaptureProblem, ExitCode } from '../core/errors';
import { describeLocations, locationSinks } from '../capture/location';
import { PcapngWriter } from '../capture/pcapng-writer';
import { readCapture, type CaptureFormatSpec, type ParserContext } from '../capture/reader';
import { captureFormats } from '../capture/formats';
import type { CaptureInterface, CaptureSummary, PacketRecord, PacketSink } from '../capture/types';

export interface ConvertOptions {
  locations?: readonly string[];
  /** Drop frames already seen at another location (default false: convert keeps every frame). */
  dedup?: boolean;
  /** Write timestamps with this many fraction digits instead of the source's (e.g. 9 for tools
   *  that mishandle 10^-12; finer sources are then truncated). */
  tsDigits?: number;
}

export interface ConvertResult {
  readonly capture: CaptureSummary;
  readonly packetsWritten: number;
  readonly bytesWritten: number;
  readonly interfaces: readonly CaptureInterface[];
  /** Packets written per interface, as "name: count" in interface order. */
  readonly perInterface: readonly string[];
  readonly duplicatesDropped: number;
  readonly unmatchedLocations: readonly string[];
}

/** Copies every packet into the writer, mapping source interface ids to pcapng ones. */
class PcapngSink implements PacketSink {
  readonly interfaces: CaptureInterface[] = [];
  private readonly ids: number[] = [];
  comment: string | undefined;

  constructor(private readonly open: (comment: string | undefined) => PcapngWriter, private readonly tsDigits?: number) {}

  private writerInstance: PcapngWriter | undefined;
  get writer(): PcapngWriter {
    // Opened lazily: the source's comment (set while its header is parsed) must be known first.
    return (this.writerInstance ??= this.open(this.comment));
  }

  interface(iface: CaptureInterface): void {
    this.interfaces.push(iface);
    this.ids[iface.id] = this.writer.addInterface({
      linkType: iface.linkType,
      snaplen: iface.snaplen,
      tsDigits: this.tsDigits ?? iface.tsDigits,
      name: iface.name,
      description: iface.description,
    });
  }

  /** Packets written per source interface id. */
  readonly counts: number[] = [];

  packet(r: PacketRecord): void {
    this.counts[r.interfaceId] = (this.counts[r.interfaceId] ?? 0) + 1;
    this.writer.writePacket(this.ids[r.interfaceId], r.sec, r.ps, r.buf.subarray(r.offset, r.offset + r.caplen), r.wirelen);
  }

  problem(problem: CaptureProblem): void {
    process.stderr.write(`migscope convert: ${problem.message}\n`);
  }
}

/**
 * The reader keeps the comment to itself until the end; the writer needs it before the first
 * block. Wrapping the format specs lets us see ParserContext.setComment as it happens.
 */
function formatsReportingComment(onComment: (text: string) => void): CaptureFormatSpec[] {
  return captureFormats.map((spec) => ({
    name: spec.name,
    sniff: (head: Uint8Array) => spec.sniff(head),
    createParser: (ctx: ParserContext) =>
      spec.createParser(
        new Proxy(ctx, {
          get(target, property) {
            if (property === 'setComment') {
              return (text: string) => {
                target.setComment(text);
                onComment(text);
              };
            }
            const value = Reflect.get(target, property, target);
            return typeof value === 'function' ? value.bind(target) : value;
          },
          set: (target, property, value) => Reflect.set(target, property, value, target),
        }),
      ),
  }));
}

export async function convertCapture(input: string, output: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const sink = new PcapngSink((comment) => PcapngWriter.toFile(output, { comment, userAppl: 'migscope convert' }), options.tsDigits);
  const chain = locationSinks(sink, { locations: options.locations, suppressDuplicates: options.dedup ?? false });
  const formats = formatsReportingComment((text) => {
    sink.comment = sink.comment === undefined ? text : `${sink.comment}\n${text}`;
  });
  let capture: CaptureSummary;
  try {
    capture = await readCapture(input, chain.sink, { formats });
  } finally {
    sink.writer.close(); // an empty or unreadable input still leaves a valid (empty) pcapng
  }
  return {
    capture,
    packetsWritten: sink.writer.packetCount,
    bytesWritten: sink.writer.bytesWritten,
    interfaces: sink.interfaces,
    perInterface: sink.interfaces.map((i) => `${i.name ?? `interface ${i.id}`}: ${sink.counts[i.id] ?? 0}`),
    duplicatesDropped: chain.duplicates?.duplicates ?? 0,
    unmatchedLocations: chain.filter?.unmatchedSelectors() ?? [],
  };
}

interface ConvertArgs {
  input: string;
  output: string;
  location?: string[];
  dedup: boolean;
  tsresol?: number;
}

export const convertCommand: CommandModule<object, ConvertArgs> = {
  command: 'convert <input> <output>',
  describe: 'Convert a capture (pcap, pcapng, DPMI .cap; gzip or - for stdin) to pcapng without losing timestamp precision',
  builder: (y) =>
    y
      .positional('input', { type: 'string', demandOption: true, describe: "capture file, or '-' for stdin" })
      .positional('output', { type: 'string', demandOption: true, describe: "pcapng file to write, or '-' for stdout" })
      .option('location', { type: 'string', array: true, describe: 'keep only these locations: interface id, name "mp:nic", or a * pattern (repeatable)' })
      .option('dedup', { type: 'boolean', default: false, describe: 'drop frames already seen at another location within 2 ms' })
      .option('tsresol', {
        type: 'number',
        describe: 'timestamp digits to write (default: the source\'s own, 12 for DPMI). 9 suits Wireshark ≤ 4.0, which misreads 10^-12 fractions',
      })
      .check((a) => a.tsresol === undefined || (Number.isInteger(a.tsresol) && a.tsresol >= 0 && a.tsresol <= 12) || '--tsresol takes 0..12')
      .example('$0 convert trace.cap.gz trace.pcapng', 'DPMI trace → pcapng with picosecond timestamps, one interface per location'),
  handler: async (args) => {
    // yargs hands a lone "-" positional over as an empty string.
    const input = args.input === '' ? '-' : args.input;
    const output = args.output === '' ? '-' : args.output;
    const result = await convertCapture(input, output, { locations: args.location, dedup: args.dedup, tsDigits: args.tsresol });
    const { capture } = result;
    for (const selector of result.unmatchedLocations) {
      process.stderr.write(`migscope convert: no location matches --location ${selector} (locations: ${describeLocations(capture.interfaces)})\n`);
    }
    const finest = Math.max(0, ...capture.interfaces.map((i) => i.tsDigits));
    if (args.tsresol !== undefined && args.tsresol < finest) {
      process.stderr.write(`migscope convert: --tsresol ${args.tsresol} truncates timestamps of ${finest}-digit interfaces\n`);
    }
    const dropped = result.duplicatesDropped > 0 ? `, ${result.duplicatesDropped} duplicate frames dropped` : '';
    process.stderr.write(
      `${capture.file}: ${capture.format}, ${capture.packets} packets read, ${result.packetsWritten} written to ${output}` +
        ` (${result.interfaces.length} interfaces${dropped})\n`,
    );
    if (result.interfaces.length > 1) process.stderr.write(`  packets per interface: ${result.perInterface.join(', ')}\n`);
    if (capture.packets === 0 && capture.incomplete) process.exitCode = ExitCode.unreadable;
    else if (capture.problems.length > 0 || result.unmatchedLocations.length > 0) process.exitCode = ExitCode.partial;
  },
};
