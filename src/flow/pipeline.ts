// The streaming core: capture reader → decoder → packet observers (ICMP, ARP, UDP markers, …)
// and TCP flow table → reassembly → protocol consumers. A Pipeline is a PacketSink, so file
// readers and live capture feed it the same way; finish() ends every flow and returns results.
import type { CaptureInterface, CaptureSummary, PacketRecord, PacketSink } from '../capture/types';
import { readCapture } from '../capture/reader';
import { CaptureProblem } from '../core/errors';
import type { Timestamp } from '../core/timestamp';
import type { DecodeCounters } from '../decode/decoder';
import { PacketDecoder } from '../decode/decoder';
import { DEFAULT_FRAGMENT_LIMITS, type FragmentLimits, type FragmentStats } from '../decode/fragments';
import type { DecodedPacket } from '../decode/packet';
import { IpProto, Layer } from '../decode/packet';
import { FlowTable, type ReassemblyLimits } from './flow-table';
import { DEFAULT_REASSEMBLY_LIMITS } from './reassembly';
import type { ProtocolDetector } from './stream-consumer';
import type { TcpFlow } from './tcp-flow';

/** Sees every decoded packet (valid only during the call), in capture order. */
export interface PacketObserver {
  packet(p: DecodedPacket): void;
  /** End of input; `at` = the last packet's timestamp (undefined for an empty capture). */
  end?(at: Timestamp | undefined): void;
}

export interface PipelineOptions {
  detectors?: ProtocolDetector[];
  observers?: PacketObserver[];
  reassembly?: Partial<ReassemblyLimits>;
  fragments?: Partial<FragmentLimits>;
  /** Progress of runPipeline's reader: input bytes read so far (compressed for gzip) of `total`. */
  onProgress?(bytesRead: number, totalBytes: number | undefined): void;
}

export interface PipelineStats {
  packets: number;
  tcpPackets: number;
  decode: DecodeCounters; // frames, snaplen-cut, malformed, unknown link, non-IP
  fragments: FragmentStats;
}

export interface PipelineResult {
  file: string;
  capture?: CaptureSummary; // set by runPipeline (a live feed has none)
  interfaces: CaptureInterface[];
  first?: Timestamp; // first packet of the capture (any protocol)
  last?: Timestamp;
  flows: TcpFlow[]; // in order of first packet
  stats: PipelineStats;
  problems: CaptureProblem[]; // from the reader
}

export class Pipeline implements PacketSink {
  private readonly decoder: PacketDecoder;
  private readonly table: FlowTable;
  private readonly observers: PacketObserver[];
  private readonly interfaces: CaptureInterface[] = [];
  private readonly problems: CaptureProblem[] = [];
  private packets = 0;
  private tcpPackets = 0;
  private first: Timestamp | undefined;
  private readonly lastTime = new Float64Array(2); // sec, ps (a typed array: no heap number per packet)
  private finished: PipelineResult | undefined;

  constructor(readonly file: string, options: PipelineOptions = {}) {
    this.decoder = new PacketDecoder({ ...DEFAULT_FRAGMENT_LIMITS, ...options.fragments });
    this.table = new FlowTable(options.detectors ?? [], { ...DEFAULT_REASSEMBLY_LIMITS, ...options.reassembly }, (detail, packet) =>
      this.problems.push(new CaptureProblem('protocol', file, detail, packet)),
    );
    this.observers = [...(options.observers ?? [])];
  }

  interface(iface: CaptureInterface): void {
    this.interfaces.push(iface);
  }

  packet(record: PacketRecord): void {
    const p = this.decoder.decode(record);
    if (this.packets++ === 0) this.first = p.at();
    this.lastTime[0] = p.sec;
    this.lastTime[1] = p.ps;
    const observers = this.observers;
    for (let i = 0; i < observers.length; i++) {
      try {
        observers[i].packet(p);
      } catch (err) {
        this.observerFailed(i--, err, p.index);
      }
    }
    if (p.protocol === IpProto.TCP && p.decodedTo === Layer.TRANSPORT) {
      this.tcpPackets++;
      this.table.packet(p);
    }
  }

  /** An observer threw: report it once and drop it, so one decoder bug does not end the run. */
  private observerFailed(index: number, err: unknown, packet: number): void {
    const observer = this.observers[index];
    this.observers.splice(index, 1);
    const name = observer.constructor?.name && observer.constructor.name !== 'Object' ? observer.constructor.name : `observer ${index + 1}`;
    this.problems.push(new CaptureProblem('protocol', this.file, `${name} failed and was detached: ${err instanceof Error ? err.message : String(err)}`, packet));
  }

  problem(problem: CaptureProblem): void {
    this.problems.push(problem);
  }

  /** The TCP flows so far (flow id = index + 1): live capture reads a migration's gap counters
   *  when it completes, before finish(). */
  get flows(): readonly TcpFlow[] {
    return this.table.flows;
  }

  /** End every flow ('eof') and every observer; returns the results (idempotent). */
  finish(): PipelineResult {
    if (this.finished) return this.finished;
    const last = this.packets > 0 ? { sec: this.lastTime[0], ps: this.lastTime[1] } : undefined;
    this.table.finish(this.lastTime[0], this.lastTime[1]);
    for (let i = 0; i < this.observers.length; i++) {
      try {
        this.observers[i].end?.(last);
      } catch (err) {
        this.observerFailed(i--, err, this.packets);
      }
    }
    this.finished = {
      file: this.file,
      interfaces: this.interfaces,
      first: this.first,
      last,
      flows: this.table.flows,
      stats: { packets: this.packets, tcpPackets: this.tcpPackets, decode: this.decoder.counters, fragments: this.decoder.fragments.stats },
      problems: this.problems,
    };
    return this.finished;
  }
}

/** Read a capture file (or '-' for stdin) through a new Pipeline. */
export async function runPipeline(file: string, options: PipelineOptions = {}): Promise<PipelineResult> {
  const pipeline = new Pipeline(file, options);
  const capture = await readCapture(file, pipeline, { onProgress: options.onProgress });
  const result = pipeline.finish();
  result.capture = capture;
  // The reader reports problems both to the sink and in its summary: keep each once.
  for (const problem of capture.problems) if (!result.problems.includes(problem)) result.problems.push(problem);
  return result;
}
