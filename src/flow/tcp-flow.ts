// One TCP connection: both directions' reassembly, its protocol consumer, its statistics.
// Statistics are counted for every frame of the connection (also after it closed, as tshark's
// conversation table does); bytes are delivered only while it is open.
import type { Timestamp } from '../core/timestamp';
import { secondsBetween } from '../core/timestamp';
import type { DecodedPacket } from '../decode/packet';
import { TcpFlag } from '../decode/packet';
import type { Direction, Endpoint, FlowInfo, ProtocolDetector, StreamConsumer, StreamEndReason } from './stream-consumer';
import { type BufferBudget, type ByteSink, SegmentKind, TcpDirection } from './reassembly';

/** Statistics of one direction, as plain data (`flow.stats`, a snapshot taken on access). */
export interface DirectionStats {
  packets: number;
  bytes: number; // frame bytes on the wire (tshark's frame.len, what conv,tcp counts)
  payloadBytes: number; // TCP segment lengths summed over every segment, retransmissions included
  streamBytes: number; // distinct payload bytes delivered in order (the reassembled stream)
  retransmissions: number; // segments carrying only bytes seen before
  outOfOrder: number; // segments arriving after a later one, filling a hole
  duplicateAcks: number;
  zeroWindows: number; // segments advertising a zero window (not SYN/FIN/RST)
  gaps: number; // holes given up (bytes never captured)
  gapBytes: number;
  firstSec: number; // -1 before the first packet
  firstPs: number;
  lastSec: number;
  lastPs: number;
}

/** The live counters behind DirectionStats. Values that outgrow small integers (picoseconds,
 *  byte counts past 2 GB) live in a Float64Array behind accessors: in V8 storing such a number
 *  into an object field allocates a heap number, which was once per packet here. */
class DirectionCounters {
  packets = 0;
  retransmissions = 0; // segments carrying only bytes seen before
  outOfOrder = 0; // segments arriving after a later one, filling a hole
  duplicateAcks = 0;
  zeroWindows = 0; // segments advertising a zero window (not SYN/FIN/RST)
  gaps = 0; // holes given up (bytes never captured)
  private readonly v = new Float64Array([0, 0, 0, 0, -1, 0, -1, 0]);
  /** frame bytes on the wire (tshark's frame.len, what conv,tcp counts) */
  get bytes(): number { return this.v[0]; }
  set bytes(x: number) { this.v[0] = x; }
  /** TCP segment lengths summed over every segment, retransmissions included */
  get payloadBytes(): number { return this.v[1]; }
  set payloadBytes(x: number) { this.v[1] = x; }
  /** distinct payload bytes delivered in order (the reassembled stream) */
  get streamBytes(): number { return this.v[2]; }
  set streamBytes(x: number) { this.v[2] = x; }
  get gapBytes(): number { return this.v[3]; }
  set gapBytes(x: number) { this.v[3] = x; }
  get firstSec(): number { return this.v[4]; } // -1 until the first packet
  get firstPs(): number { return this.v[5]; }
  get lastSec(): number { return this.v[6]; }
  get lastPs(): number { return this.v[7]; }
  /** Count one packet's time. */
  seen(sec: number, ps: number): void {
    const v = this.v;
    if (v[4] < 0) { v[4] = sec; v[5] = ps; }
    v[6] = sec;
    v[7] = ps;
  }
}

const SYN = TcpFlag.SYN;
const ACK = TcpFlag.ACK;
const FIN = TcpFlag.FIN;
const RST = TcpFlag.RST;
const CONTROL = SYN | FIN | RST;

export class TcpFlow {
  readonly info: FlowInfo;
  readonly isIpv6: boolean;
  // endpoints as words (client = A, server = B); IPv4 uses word 3 only
  readonly a = new Uint32Array(4);
  readonly b = new Uint32Array(4);
  readonly portA: number;
  readonly portB: number;
  readonly directions: [TcpDirection, TcpDirection];
  private readonly counters: [DirectionCounters, DirectionCounters] = [new DirectionCounters(), new DirectionCounters()];
  private snapshot: [DirectionStats, DirectionStats] | undefined;
  readonly firstSec: number;
  readonly firstPs: number;
  // handshake instants (sec, ps), -1 = not seen
  synSec = -1;
  synPs = 0;
  synAckSec = -1;
  synAckPs = 0;
  handshakeAckSec = -1;
  handshakeAckPs = 0;
  finSeen = [false, false];
  closed = false; // both FINs or a RST: a new SYN on the same tuple starts a new flow
  ended = false; // consumer told end()
  endReason: StreamEndReason | undefined;
  protocol: string | undefined; // name of the detector whose consumer decodes this flow
  private consumer: StreamConsumer | undefined;
  private detectors: readonly ProtocolDetector[] | undefined;
  private readonly lastAck = [-1, -1];
  private readonly lastWindow = [-1, -1];
  private readonly sinks: [ByteSink, ByteSink];

  private lastPacket = 0;

  constructor(
    id: number,
    p: DecodedPacket,
    clientIsSource: boolean,
    detectors: readonly ProtocolDetector[],
    budget: BufferBudget,
    private readonly onProblem: (detail: string, packet: number) => void = () => {},
  ) {
    this.isIpv6 = p.l3 === 6;
    const clientWords = clientIsSource ? p.src : p.dst;
    const serverWords = clientIsSource ? p.dst : p.src;
    this.a.set(clientWords);
    this.b.set(serverWords);
    this.portA = clientIsSource ? p.srcPort : p.dstPort;
    this.portB = clientIsSource ? p.dstPort : p.srcPort;
    const client: Endpoint = { ip: clientIsSource ? p.srcText() : p.dstText(), port: this.portA };
    const server: Endpoint = { ip: clientIsSource ? p.dstText() : p.srcText(), port: this.portB };
    const handshakeSeen = (p.tcpFlags & SYN) !== 0;
    this.info = { id, client, server, firstSeen: p.at(), firstPacket: p.index, handshakeSeen };
    this.firstSec = p.sec;
    this.firstPs = p.ps;
    this.directions = [new TcpDirection(0, budget), new TcpDirection(1, budget)];
    this.detectors = detectors.length > 0 ? detectors : undefined;
    this.sinks = [this.makeSink(0), this.makeSink(1)];
  }

  /** 0: the packet goes client → server, 1: server → client, -1: not this flow. */
  directionOf(p: DecodedPacket): number {
    if (p.srcPort === this.portA && p.dstPort === this.portB && sameWords(p.src, this.a) && sameWords(p.dst, this.b)) return 0;
    if (p.srcPort === this.portB && p.dstPort === this.portA && sameWords(p.src, this.b) && sameWords(p.dst, this.a)) return 1;
    return -1;
  }

  packet(p: DecodedPacket, dir: Direction): void {
    const s = this.counters[dir];
    this.lastPacket = p.index;
    s.packets++;
    s.bytes += p.wirelen;
    s.payloadBytes += p.payloadWireLength;
    s.seen(p.sec, p.ps);
    const flags = p.tcpFlags;

    if ((flags & SYN) !== 0) {
      if ((flags & ACK) === 0) {
        if (this.synSec < 0) { this.synSec = p.sec; this.synPs = p.ps; }
      } else if (this.synAckSec < 0) { this.synAckSec = p.sec; this.synAckPs = p.ps; }
      this.directions[dir].syn(p.seq);
    } else if ((flags & ACK) !== 0 && dir === 0 && this.synAckSec >= 0 && this.handshakeAckSec < 0) {
      this.handshakeAckSec = p.sec;
      this.handshakeAckPs = p.ps;
    }
    if (p.window === 0 && (flags & CONTROL) === 0) s.zeroWindows++;
    if ((flags & ACK) !== 0) {
      if (p.payloadWireLength === 0 && (flags & CONTROL) === 0 && p.ack === this.lastAck[dir] && p.window === this.lastWindow[dir]) s.duplicateAcks++;
      this.lastAck[dir] = p.ack;
      this.lastWindow[dir] = p.window;
    }
    if (this.ended) return;

    if ((flags & RST) !== 0) {
      this.close('rst', p.sec, p.ps);
      return;
    }
    const d = this.directions[dir];
    if (p.payloadWireLength > 0 || (flags & FIN) !== 0) {
      const kind = d.segment(p, this.sinks[dir]);
      if (kind === SegmentKind.RETRANSMISSION) s.retransmissions++;
      else if (kind === SegmentKind.OUT_OF_ORDER) s.outOfOrder++;
    }
    if ((flags & ACK) !== 0) this.directions[1 - dir].acknowledged(p, this.sinks[1 - dir]);
    if ((flags & FIN) !== 0) this.finSeen[dir] = true;
    if (this.finSeen[0] && this.finSeen[1]) {
      this.closed = true;
      // Deliver only once both directions reached their FIN (reordered data may still come);
      // otherwise the end of the capture flushes.
      const [d0, d1] = this.directions;
      if (d0.finOffset >= 0 && d0.next >= d0.finOffset && d1.finOffset >= 0 && d1.next >= d1.finOffset) this.finish('fin', p.sec, p.ps);
    }
  }

  /** Whether a SYN (without ACK) with sequence `seq` in direction `dir` opens a new connection
   *  on this tuple: the flow closed, or that side already had another ISN or sent data. */
  startsNewConnection(seq: number, dir: number): boolean {
    if (this.closed) return true;
    const d = this.directions[dir];
    if (d.synSeen) return ((seq + 1) >>> 0) !== d.baseSeq;
    return d.started && d.maxSeen > 0;
  }

  /** Give up on the flow: flush both directions and tell the consumer (idempotent). */
  finish(reason: StreamEndReason, sec: number, ps: number): void {
    if (this.ended) return;
    this.ended = true;
    this.endReason = reason;
    const at = { sec, ps, index: this.lastPacket };
    this.directions[0].flush(at, this.sinks[0]);
    this.directions[1].flush(at, this.sinks[1]);
    this.directions[0].release();
    this.directions[1].release();
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer) {
      try {
        consumer.end(reason, { sec, ps });
      } catch (err) {
        this.consumerFailed(err, 'end', this.lastPacket);
      }
    }
    this.detectors = undefined;
  }

  private close(reason: StreamEndReason, sec: number, ps: number): void {
    this.closed = true;
    this.finish(reason, sec, ps);
  }

  private makeSink(dir: Direction): ByteSink {
    return {
      data: (buf, start, end, streamOffset, origin) => {
        this.counters[dir].streamBytes += end - start;
        if (this.detectors) this.detect(buf.subarray(start, end), dir);
        const consumer = this.consumer;
        if (!consumer) return;
        try {
          consumer.data(buf, start, end, dir, streamOffset, { sec: origin.sec, ps: origin.ps }, origin.index);
        } catch (err) {
          this.consumerFailed(err, 'data', origin.index);
        }
      },
      gap: (streamOffset, length, at) => {
        const s = this.counters[dir];
        s.gaps++;
        s.gapBytes += length;
        const consumer = this.consumer;
        if (!consumer) return;
        try {
          consumer.gap(dir, streamOffset, length, { sec: at.sec, ps: at.ps });
        } catch (err) {
          this.consumerFailed(err, 'gap', at.index);
        }
      },
    };
  }

  /** A decoder bug must not end the analysis: report it once, detach the consumer (its flow
   *  is still counted), go on. */
  private consumerFailed(err: unknown, call: string, packet: number): void {
    this.onProblem(`flow ${this.info.id} (${this.protocol ?? 'consumer'}): ${call}() failed, decoder detached: ${errorText(err)}`, packet);
    this.consumer = undefined;
  }

  /** Ask the detectors once, at the first delivered payload of either direction. */
  private detect(firstBytes: Uint8Array, dir: Direction): void {
    const detectors = this.detectors;
    this.detectors = undefined;
    if (!detectors) return;
    for (const detector of detectors) {
      let consumer: StreamConsumer | undefined;
      try {
        consumer = detector.create(this.info, firstBytes, dir);
      } catch (err) {
        this.onProblem(`flow ${this.info.id}: detector ${detector.name} failed: ${errorText(err)}`, this.lastPacket);
        continue;
      }
      if (consumer) {
        this.consumer = consumer;
        this.protocol = detector.name;
        return;
      }
    }
  }

  /** Both directions' statistics (0 = client → server) as plain objects, current at access. */
  get stats(): [DirectionStats, DirectionStats] {
    const snapshot = (this.snapshot ??= [{} as DirectionStats, {} as DirectionStats]);
    for (let d = 0; d < 2; d++) {
      const c = this.counters[d];
      Object.assign(snapshot[d], {
        packets: c.packets, bytes: c.bytes, payloadBytes: c.payloadBytes, streamBytes: c.streamBytes, retransmissions: c.retransmissions,
        outOfOrder: c.outOfOrder, duplicateAcks: c.duplicateAcks, zeroWindows: c.zeroWindows, gaps: c.gaps, gapBytes: c.gapBytes,
        firstSec: c.firstSec, firstPs: c.firstPs, lastSec: c.lastSec, lastPs: c.lastPs,
      });
    }
    return snapshot;
  }

  get first(): Timestamp {
    return { sec: this.firstSec, ps: this.firstPs };
  }
  /** The flow's last packet (the later of the two directions' last). */
  get last(): Timestamp {
    const [a, b] = this.counters;
    if (b.lastSec < 0 || (a.lastSec >= 0 && (a.lastSec > b.lastSec || (a.lastSec === b.lastSec && a.lastPs >= b.lastPs)))) return { sec: a.lastSec, ps: a.lastPs };
    return { sec: b.lastSec, ps: b.lastPs };
  }
  get durationSec(): number {
    return secondsBetween(this.first, this.last);
  }
  /** tshark's initial RTT: client SYN → client ACK of the SYN-ACK. */
  get handshakeRttSec(): number | undefined {
    if (this.synSec < 0 || this.handshakeAckSec < 0) return undefined;
    return secondsBetween({ sec: this.synSec, ps: this.synPs }, { sec: this.handshakeAckSec, ps: this.handshakeAckPs });
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sameWords(x: Uint32Array, y: Uint32Array): boolean {
  return x[3] === y[3] && x[2] === y[2] && x[1] === y[1] && x[0] === y[0];
}
