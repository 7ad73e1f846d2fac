// One direction of a TCP connection: turns segments (any order, duplicated, overlapping) into the
// byte stream, delivered in order exactly once. In-order bytes go straight from the capture
// buffer to the consumer (zero copy); segments ahead of a hole are copied and held (bounded).
// Gap policy (README.md): a hole is given up — reported via gap() and skipped — when
//   1. the peer acknowledges bytes past it (the receiver has them, so the capture missed them),
//   2. this direction buffers more than its share of out-of-order bytes, or
//   3. the stream ends (FIN from both sides, RST, end of capture): remaining holes, and bytes
//      the peer acknowledged that were never seen, are reported before end().
// Sequence numbers are mapped to 64-bit-safe stream offsets (JS numbers) relative to the
// expected next byte with a signed 32-bit difference, so wrap-around is invisible above here.
import type { Direction } from './stream-consumer';

/** The packet that carried bytes (or triggered a gap): its time and number. Passed as an object,
 *  never as number arguments: picoseconds and sequence numbers exceed the small-integer range,
 *  and boxing them per call was the pipeline's only per-packet allocation. */
export interface SegmentOrigin {
  readonly sec: number;
  readonly ps: number;
  readonly index: number; // packet number
}

/** One TCP segment as the decoder left it (DecodedPacket satisfies this). */
export interface SegmentView extends SegmentOrigin {
  readonly seq: number;
  readonly tcpFlags: number;
  readonly buf: Uint8Array;
  readonly payloadOffset: number;
  readonly payloadLength: number; // captured
  readonly payloadWireLength: number; // on the wire (> payloadLength when cut by the snaplen)
}

/** Where in-order bytes and gaps go (the flow wraps its StreamConsumer in this). */
export interface ByteSink {
  data(buf: Uint8Array, start: number, end: number, streamOffset: number, origin: SegmentOrigin): void;
  gap(streamOffset: number, length: number, at: SegmentOrigin): void;
}

/** Shared budget of out-of-order bytes over all flows (memory bound). */
export class BufferBudget {
  used = 0;
  constructor(readonly perDirection: number, readonly total: number) {}
}

export const DEFAULT_REASSEMBLY_LIMITS = { maxBufferedPerDirection: 8 << 20, maxBufferedTotal: 128 << 20 };

interface HeldSegment extends SegmentOrigin {
  offset: number; // stream offset of bytes[0]
  bytes: Uint8Array; // a copy
}

/** Segment outcome, for the statistics. */
export const SegmentKind = { EMPTY: 0, IN_ORDER: 1, AHEAD: 2, OUT_OF_ORDER: 3, RETRANSMISSION: 4 } as const;

// Acknowledgements further ahead than this are treated as nonsense (not a gap trigger).
const MAX_ACK_JUMP = 1 << 30;

export class TcpDirection {
  started = false; // stream offset 0 is fixed (SYN seen, or first segment of a mid-stream join)
  synSeen = false;
  baseSeq = 0; // sequence number of stream offset 0
  // Offsets pass 2^31 in long streams: kept in a Float64Array (a store into an object field would
  // allocate a heap number per segment in V8). next, maxSeen, finOffset, peerAck:
  private readonly offsets = new Float64Array([0, 0, -1, -1]);
  /** stream offset of the next byte to deliver */
  get next(): number { return this.offsets[0]; }
  set next(x: number) { this.offsets[0] = x; }
  /** highest stream offset + 1 of any byte seen */
  get maxSeen(): number { return this.offsets[1]; }
  set maxSeen(x: number) { this.offsets[1] = x; }
  /** stream offset of the FIN, -1 until seen */
  get finOffset(): number { return this.offsets[2]; }
  set finOffset(x: number) { this.offsets[2] = x; }
  /** highest stream offset acknowledged by the peer, -1 until an ACK */
  get peerAck(): number { return this.offsets[3]; }
  set peerAck(x: number) { this.offsets[3] = x; }
  held: HeldSegment[] = []; // ahead of `next`, sorted by offset
  heldBytes = 0;
  private heldEndBound = 0; // ≥ the end offset of every held segment
  // statistics
  gaps = 0;
  gapBytes = 0;

  constructor(private readonly dir: Direction, private readonly budget: BufferBudget) {}

  /** Offset of sequence number `seq` (nearest to the expected next byte). */
  offsetOf(seq: number): number {
    const expected = (this.baseSeq + this.next) >>> 0;
    return this.next + ((seq - expected) | 0);
  }

  /** A SYN fixes the start: its sequence number is stream offset -1. */
  syn(seq: number): void {
    if (this.started && this.maxSeen > 0) return; // a retransmitted SYN after data: ignore
    this.baseSeq = (seq + 1) >>> 0;
    this.started = true;
    this.synSeen = true;
  }

  /** One segment (payload, FIN) of this direction. Returns a SegmentKind. */
  segment(p: SegmentView, sink: ByteSink | undefined): number {
    const seq = p.seq;
    const buf = p.buf;
    const start = p.payloadOffset;
    const end = start + p.payloadLength;
    const wireLength = p.payloadWireLength;
    const fin = (p.tcpFlags & 1) !== 0;
    if (!this.started) {
      this.baseSeq = seq; // mid-stream join: the first byte seen is offset 0
      this.started = true;
    }
    const length = end - start;
    const offset = this.offsetOf(seq);
    if (fin && this.finOffset < 0) this.finOffset = offset + wireLength;
    if (wireLength === 0) return SegmentKind.EMPTY;
    const segmentEnd = offset + length;
    const wireEnd = offset + wireLength;
    if (wireEnd <= this.next) return SegmentKind.RETRANSMISSION;
    let kind: number;
    if (offset < this.maxSeen) {
      // Below the highest byte seen: a retransmission if every byte of it up to that point was
      // seen before, else a late (out-of-order) segment filling a hole.
      kind = this.coveredByHeld(Math.max(offset, this.next), Math.min(wireEnd, this.maxSeen)) ? SegmentKind.RETRANSMISSION : SegmentKind.OUT_OF_ORDER;
    } else kind = offset > this.next ? SegmentKind.AHEAD : SegmentKind.IN_ORDER;
    if (wireEnd > this.maxSeen) this.maxSeen = wireEnd;

    if (offset <= this.next) {
      if (segmentEnd > this.next) {
        sink?.data(buf, start + (this.next - offset), end, this.next, p);
        this.next = segmentEnd;
      }
      // cut by the snaplen: the rest of this segment was never captured
      if (wireEnd > this.next) this.reportGap(this.next, wireEnd - this.next, p, sink);
      if (this.held.length > 0) this.drain(sink);
    } else {
      if (length > 0 && !this.coveredByHeld(offset, segmentEnd)) this.hold(offset, buf, start, end, p);
      if (this.heldBytes > this.budget.perDirection || this.budget.used > this.budget.total) this.giveUpFirstHole(p, sink);
      else if (this.peerAck > this.next) this.ackedPastHole(p, sink);
    }
    return kind;
  }

  /** The peer's segment `p` (ACK flag set) acknowledged up to `p.ack`. */
  acknowledged(p: SegmentOrigin & { readonly ack: number }, sink: ByteSink | undefined): void {
    if (!this.started) return;
    const offset = this.offsetOf(p.ack);
    if (offset <= this.peerAck || offset - this.next > MAX_ACK_JUMP) return;
    this.peerAck = offset;
    if (this.held.length > 0 && offset > this.next) this.ackedPastHole(p, sink);
  }

  /** End of stream: give up every remaining hole, deliver what is held, report acknowledged
   *  bytes never seen; then release the buffers. */
  flush(at: SegmentOrigin, sink: ByteSink | undefined): void {
    while (this.held.length > 0) this.giveUpFirstHole(at, sink);
    let ackedEnd = this.peerAck;
    if (this.finOffset >= 0 && ackedEnd > this.finOffset) ackedEnd = this.finOffset; // the FIN's own sequence number
    if (ackedEnd > this.next && this.started) {
      this.reportGap(this.next, ackedEnd - this.next, at, sink);
    }
  }

  get bufferedBytes(): number {
    return this.heldBytes;
  }

  private coveredByHeld(from: number, to: number): boolean {
    // the usual case behind a hole: the segment extends the held run (no scan of thousands)
    if (this.held.length === 0 || from >= this.heldEndBound) return from >= to;
    for (const h of this.held) {
      if (from >= to) return true;
      if (h.offset > from) return false;
      if (h.offset + h.bytes.length >= to) return true;
      if (h.offset + h.bytes.length > from) from = h.offset + h.bytes.length;
    }
    return from >= to;
  }

  private hold(offset: number, buf: Uint8Array, start: number, end: number, origin: SegmentOrigin): void {
    const segment: HeldSegment = { offset, bytes: buf.slice(start, end), sec: origin.sec, ps: origin.ps, index: origin.index };
    const held = this.held;
    let i = held.length;
    while (i > 0 && held[i - 1].offset > offset) i--; // usually appended at the end
    held.splice(i, 0, segment);
    if (offset + segment.bytes.length > this.heldEndBound) this.heldEndBound = offset + segment.bytes.length;
    this.heldBytes += segment.bytes.length;
    this.budget.used += segment.bytes.length;
  }

  /** Deliver held segments that now continue the stream (trimming overlaps). */
  private drain(sink: ByteSink | undefined): void {
    const held = this.held;
    let taken = 0;
    while (taken < held.length && held[taken].offset <= this.next) {
      const h = held[taken++];
      const hEnd = h.offset + h.bytes.length;
      if (hEnd > this.next) {
        sink?.data(h.bytes, this.next - h.offset, h.bytes.length, this.next, h);
        this.next = hEnd;
      }
      this.heldBytes -= h.bytes.length;
      this.budget.used -= h.bytes.length;
    }
    if (taken > 0) held.splice(0, taken);
  }

  private ackedPastHole(at: SegmentOrigin, sink: ByteSink | undefined): void {
    while (this.held.length > 0 && this.peerAck > this.next) {
      const holeEnd = Math.min(this.peerAck, this.held[0].offset);
      if (holeEnd <= this.next) break;
      this.reportGap(this.next, holeEnd - this.next, at, sink);
      this.drain(sink);
    }
  }

  private giveUpFirstHole(at: SegmentOrigin, sink: ByteSink | undefined): void {
    const first = this.held[0];
    if (first.offset > this.next) this.reportGap(this.next, first.offset - this.next, at, sink);
    this.drain(sink);
  }

  private reportGap(offset: number, length: number, at: SegmentOrigin, sink: ByteSink | undefined): void {
    this.gaps++;
    this.gapBytes += length;
    this.next = offset + length;
    if (this.maxSeen < this.next) this.maxSeen = this.next;
    sink?.gap(offset, length, at);
  }

  /** Release held bytes without delivering (flow dropped). */
  release(): void {
    this.budget.used -= this.heldBytes;
    this.heldBytes = 0;
    this.held = [];
  }

  get direction(): Direction {
    return this.dir;
  }
}

