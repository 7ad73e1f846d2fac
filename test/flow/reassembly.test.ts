// Reassembly properties: a random byte stream cut into segments, shuffled, duplicated,
// overlapping, some dropped, must come out as exactly the original bytes in order, with gaps
// exactly where nothing covered the stream — across sequence-number wrap-around too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BufferBudget, SegmentKind, TcpDirection, type ByteSink, type SegmentView } from '../../src/flow/reassembly';

interface Piece { kind: 'data' | 'gap'; offset: number; length: number; bytes?: Uint8Array }

const AT_END = { sec: 0, ps: 0, index: 0 };

/** A segment of payload buf[start, end) (wireLength on the wire) at sequence `seq`. */
function seg(seq: number, buf: Uint8Array, start: number, end: number, wireLength: number, index: number): SegmentView {
  return { seq, tcpFlags: 0, buf, payloadOffset: start, payloadLength: end - start, payloadWireLength: wireLength, sec: 0, ps: 0, index };
}

class Recorder implements ByteSink {
  pieces: Piece[] = [];
  data(buf: Uint8Array, start: number, end: number, streamOffset: number): void {
    this.pieces.push({ kind: 'data', offset: streamOffset, length: end - start, bytes: buf.slice(start, end) });
  }
  gap(streamOffset: number, length: number): void {
    this.pieces.push({ kind: 'gap', offset: streamOffset, length });
  }
  /** Merge adjacent pieces of the same kind, so segment boundaries do not matter. */
  merged(): Piece[] {
    const out: Piece[] = [];
    for (const p of this.pieces) {
      const last = out[out.length - 1];
      if (last && last.kind === p.kind && last.offset + last.length === p.offset) {
        last.length += p.length;
        if (p.bytes) last.bytes = new Uint8Array(Buffer.concat([last.bytes!, p.bytes]));
      } else out.push({ ...p });
    }
    return out;
  }
}

/** Expected pieces: covered runs as data, uncovered runs below `limit` as gaps. */
function expected(stream: Uint8Array, covered: boolean[], limit: number): Piece[] {
  const out: Piece[] = [];
  let i = 0;
  while (i < limit) {
    let j = i;
    while (j < limit && covered[j] === covered[i]) j++;
    out.push(covered[i] ? { kind: 'data', offset: i, length: j - i, bytes: stream.slice(i, j) } : { kind: 'gap', offset: i, length: j - i });
    i = j;
  }
  return out;
}

const scenario = fc.record({
  stream: fc.uint8Array({ minLength: 1, maxLength: 3000 }),
  // ISNs near 2^32 make the sequence numbers wrap inside the stream
  isn: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0xffffffff - 3000, max: 0xffffffff })),
  cuts: fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 60 }),
  dropMask: fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }),
  extra: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 500 })), { maxLength: 15 }), // duplicates / overlaps
  shuffleSeed: fc.array(fc.nat(), { minLength: 80, maxLength: 80 }),
});

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

/** Segments [offset, end) of the scenario, shuffled, with the coverage they give. */
function segmentsOf(s: Scenario): { segments: [number, number][]; covered: boolean[] } {
  const n = s.stream.length;
  const segments: [number, number][] = [];
  let at = 0;
  let k = 0;
  while (at < n) {
    const end = Math.min(n, at + s.cuts[k % s.cuts.length]);
    if (!s.dropMask[k % s.dropMask.length]) segments.push([at, end]);
    at = end;
    k++;
  }
  for (const [start, length] of s.extra) {
    const from = start % n;
    segments.push([from, Math.min(n, from + length)]);
  }
  for (let i = segments.length - 1; i > 0; i--) {
    const j = s.shuffleSeed[i % s.shuffleSeed.length] % (i + 1);
    [segments[i], segments[j]] = [segments[j], segments[i]];
  }
  const covered = new Array<boolean>(n).fill(false);
  for (const [a, b] of segments) for (let i = a; i < b; i++) covered[i] = true;
  return { segments, covered };
}

function feed(s: Scenario, segments: [number, number][], budget: BufferBudget, sink: Recorder): TcpDirection {
  const d = new TcpDirection(0, budget);
  d.syn((s.isn - 1) >>> 0); // the SYN fixes stream offset 0 at isn
  let packet = 1;
  for (const [a, b] of segments) {
    d.segment(seg((s.isn + a) >>> 0, s.stream, a, b, b - a, packet++), sink);
  }
  return d;
}

test('reassembly: exactly the original bytes, once, in order; gaps exactly where bytes were dropped', () => {
  fc.assert(
    fc.property(scenario, (s) => {
      const { segments, covered } = segmentsOf(s);
      const sink = new Recorder();
      const budget = new BufferBudget(1 << 30, 1 << 30); // never give up early
      const d = feed(s, segments, budget, sink);
      d.flush(AT_END, sink);
      let lastCovered = covered.lastIndexOf(true) + 1;
      assert.deepEqual(sink.merged(), expected(s.stream, covered, lastCovered));
      assert.equal(budget.used, 0, 'every held byte released');
      // the peer acknowledging the whole stream turns the uncaptured tail into a gap too
      const sink2 = new Recorder();
      const d2 = feed(s, segments, new BufferBudget(1 << 30, 1 << 30), sink2);
      d2.acknowledged({ ack: (s.isn + s.stream.length) >>> 0, sec: 0, ps: 0, index: 0 }, sink2);
      d2.flush(AT_END, sink2);
      lastCovered = s.stream.length;
      assert.deepEqual(sink2.merged(), expected(s.stream, covered, lastCovered));
    }),
    { numRuns: 400 },
  );
});

test('reassembly with a small buffer bound: delivered bytes are right, every byte is data or gap exactly once', () => {
  fc.assert(
    fc.property(scenario, fc.integer({ min: 1, max: 600 }), (s, bound) => {
      const { segments } = segmentsOf(s);
      const sink = new Recorder();
      const budget = new BufferBudget(bound, 1 << 30);
      const d = feed(s, segments, budget, sink);
      assert.ok(d.bufferedBytes <= bound + 400, 'held bytes stay near the bound');
      d.flush(AT_END, sink);
      let next = 0;
      for (const p of sink.pieces) {
        assert.equal(p.offset, next, 'contiguous, no overlap, no splice');
        if (p.kind === 'data') assert.deepEqual(p.bytes, s.stream.slice(p.offset, p.offset + p.length));
        next += p.length;
      }
      assert.equal(budget.used, 0);
    }),
    { numRuns: 300 },
  );
});

test('in-order segments are delivered from the caller\'s buffer without copying', () => {
  const d = new TcpDirection(0, new BufferBudget(1 << 20, 1 << 20));
  const frame = new Uint8Array([9, 9, 1, 2, 3, 4]);
  let seen: Uint8Array | undefined;
  d.syn(99);
  d.segment(seg(100, frame, 2, 6, 4, 1), { data: (buf: Uint8Array) => { seen = buf; }, gap: () => assert.fail('no gap') });
  assert.equal(seen, frame);
});

test('the peer acknowledging past a hole gives it up at once (the capture missed those bytes)', () => {
  const sink = new Recorder();
  const d = new TcpDirection(0, new BufferBudget(1 << 20, 1 << 20));
  const bytes = new Uint8Array(300).map((_, i) => i & 255);
  d.syn(0xfffffff0); // stream offset 0 = seq 0xfffffff1: wraps after 15 bytes
  d.segment(seg(0xfffffff1, bytes, 0, 100, 100, 1), sink);
  d.segment(seg((0xfffffff1 + 200) >>> 0, bytes, 200, 300, 100, 3), sink); // 100..200 never captured
  assert.equal(sink.pieces.length, 1);
  d.acknowledged({ ack: (0xfffffff1 + 300) >>> 0, sec: 1, ps: 0, index: 0 }, sink);
  assert.deepEqual(sink.merged().map((p) => [p.kind, p.offset, p.length]), [['data', 0, 100], ['gap', 100, 100], ['data', 200, 100]]);
  assert.equal(d.gaps, 1);
  assert.equal(d.gapBytes, 100);
});

test('a segment cut by the snaplen delivers its captured bytes and reports the rest as a gap', () => {
  const sink = new Recorder();
  const d = new TcpDirection(0, new BufferBudget(1 << 20, 1 << 20));
  d.syn(0);
  const bytes = new Uint8Array(50).fill(7);
  d.segment(seg(1, bytes, 0, 50, 1448, 1), sink);
  d.segment(seg(1 + 1448, bytes, 0, 50, 50, 2), sink);
  assert.deepEqual(sink.merged().map((p) => [p.kind, p.offset, p.length]), [['data', 0, 50], ['gap', 50, 1398], ['data', 1448, 50]]);
});

test('segments inside held bytes count as retransmissions and are not held twice', () => {
  const d = new TcpDirection(0, new BufferBudget(1 << 20, 1 << 20));
  const bytes = new Uint8Array(200);
  d.syn(0);
  assert.equal(d.segment(seg(1 + 20, bytes, 20, 30, 10, 1), undefined), SegmentKind.AHEAD);
  assert.equal(d.segment(seg(1 + 10, bytes, 10, 100, 90, 2), undefined), SegmentKind.OUT_OF_ORDER); // covers the first
  assert.equal(d.segment(seg(1 + 50, bytes, 50, 60, 10, 3), undefined), SegmentKind.RETRANSMISSION);
  // old bytes plus new ones past the highest seen: a (repacketized) retransmission, new bytes kept
  assert.equal(d.segment(seg(1 + 95, bytes, 95, 120, 25, 4), undefined), SegmentKind.RETRANSMISSION);
  assert.equal(d.bufferedBytes, 10 + 90 + 25);
  assert.equal(d.segment(seg(1, bytes, 0, 10, 10, 5), undefined), SegmentKind.OUT_OF_ORDER);
  assert.equal(d.bufferedBytes, 0);
  assert.equal(d.next, 120);
});
