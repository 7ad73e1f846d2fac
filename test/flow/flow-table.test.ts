// Flow tracking through the Pipeline with hand-built segments: handshake and RTT, direction,
// FIN/RST close, port reuse, mid-stream joins, detectors and consumers, statistics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinkType } from '../../src/capture/types';
import { IpProto, TcpFlag } from '../../src/decode/packet';
import { Pipeline, type PacketObserver } from '../../src/flow/pipeline';
import type { Direction, FlowInfo, ProtocolDetector, StreamConsumer, StreamEndReason } from '../../src/flow/stream-consumer';
import type { Timestamp } from '../../src/core/timestamp';
import { ether, ipv4, ipv6, record, tcp, udp, type TcpSpec } from '../decode/frames';

const { SYN, ACK, FIN, RST, PSH } = TcpFlag;
const C = '10.77.0.1';
const S = '10.77.0.2';

class Feeder {
  readonly pipeline: Pipeline;
  private index = 0;
  private usec = 0;
  constructor(detectors: ProtocolDetector[] = [], observers: PacketObserver[] = []) {
    this.pipeline = new Pipeline('test', { detectors, observers });
  }
  /** One segment from `src` to `dst`; time advances 100 µs per packet unless `atUsec` given. */
  send(src: string, dst: string, spec: TcpSpec, atUsec?: number): void {
    this.usec = atUsec ?? this.usec + 100;
    const frame = ether(0x0800, ipv4({ src, dst, protocol: IpProto.TCP, payload: tcp(spec) }));
    this.pipeline.packet(record(frame, LinkType.ETHERNET, { index: ++this.index, sec: 1000 + Math.floor(this.usec / 1e6), ps: (this.usec % 1e6) * 1e6 }));
  }
}

class Collector implements StreamConsumer {
  bytes: [number[], number[]] = [[], []];
  gaps: [Direction, number, number][] = [];
  ends: StreamEndReason[] = [];
  packets: number[] = [];
  data(buf: Uint8Array, start: number, end: number, dir: Direction, streamOffset: number, _at: Timestamp, packet: number): void {
    assert.equal(streamOffset, this.bytes[dir].length, 'offsets follow each other');
    this.bytes[dir].push(...buf.subarray(start, end));
    this.packets.push(packet);
  }
  gap(dir: Direction, streamOffset: number, length: number): void {
    this.gaps.push([dir, streamOffset, length]);
    for (let i = 0; i < length; i++) this.bytes[dir].push(-1);
  }
  end(reason: StreamEndReason): void {
    this.ends.push(reason);
  }
}

function detector(name: string, accept: (info: FlowInfo, first: Uint8Array, dir: Direction) => boolean, made: Collector[]): ProtocolDetector {
  return {
    name,
    create(info, first, dir) {
      if (!accept(info, first, dir)) return undefined;
      const c = new Collector();
      made.push(c);
      return c;
    },
  };
}

const text = (s: string) => [...Buffer.from(s)];

function handshake(f: Feeder, cport: number, isnC: number, isnS: number): void {
  f.send(C, S, { sport: cport, dport: 16509, seq: isnC, flags: SYN, options: [2, 4, 5, 0xb4] });
  f.send(S, C, { sport: 16509, dport: cport, seq: isnS, ack: isnC + 1, flags: SYN | ACK });
  f.send(C, S, { sport: cport, dport: 16509, seq: isnC + 1, ack: isnS + 1, flags: ACK });
}

test('handshake, data both ways, FIN close: bytes delivered in order, RTT and direction right', () => {
  const made: Collector[] = [];
  const f = new Feeder([detector('libvirt', (info) => info.server.port === 16509, made)]);
  handshake(f, 40000, 1000, 5000);
  f.send(C, S, { sport: 40000, dport: 16509, seq: 1001, ack: 5001, flags: ACK | PSH, payload: text('hello ') });
  f.send(S, C, { sport: 16509, dport: 40000, seq: 5001, ack: 1007, flags: ACK | PSH, payload: text('ok') });
  f.send(C, S, { sport: 40000, dport: 16509, seq: 1007, ack: 5003, flags: ACK | PSH, payload: text('world') });
  f.send(C, S, { sport: 40000, dport: 16509, seq: 1012, ack: 5003, flags: FIN | ACK });
  f.send(S, C, { sport: 16509, dport: 40000, seq: 5003, ack: 1013, flags: FIN | ACK });
  f.send(C, S, { sport: 40000, dport: 16509, seq: 1013, ack: 5004, flags: ACK });
  const result = f.pipeline.finish();
  assert.equal(result.flows.length, 1);
  const flow = result.flows[0];
  assert.deepEqual([flow.info.client, flow.info.server, flow.info.handshakeSeen], [{ ip: C, port: 40000 }, { ip: S, port: 16509 }, true]);
  assert.equal(flow.protocol, 'libvirt');
  assert.equal(flow.endReason, 'fin');
  assert.ok(Math.abs(flow.handshakeRttSec! - 200e-6) < 1e-12);
  assert.deepEqual([flow.stats[0].packets, flow.stats[1].packets], [6, 3]);
  assert.deepEqual([flow.stats[0].streamBytes, flow.stats[1].streamBytes], [11, 2]);
  const c = made[0];
  assert.equal(Buffer.from(c.bytes[0]).toString(), 'hello world');
  assert.equal(Buffer.from(c.bytes[1]).toString(), 'ok');
  assert.deepEqual(c.ends, ['fin']);
  assert.deepEqual(c.gaps, []);
});

test('the SYN-ACK seen first makes its receiver the client; a mid-stream join takes the first sender', () => {
  const f = new Feeder();
  f.send(S, C, { sport: 16509, dport: 40001, seq: 7, ack: 100, flags: SYN | ACK });
  f.send(C, S, { sport: 40002, dport: 49152, seq: 123456, ack: 9, flags: ACK, payload: [1, 2, 3] });
  const [a, b] = f.pipeline.finish().flows;
  assert.deepEqual([a.info.client.port, a.info.server.port, a.info.handshakeSeen], [40001, 16509, true]);
  assert.deepEqual([b.info.client.port, b.info.server.port, b.info.handshakeSeen], [40002, 49152, false]);
  assert.equal(b.stats[0].streamBytes, 3);
  assert.equal(b.endReason, 'eof');
});

test('port reuse: a new SYN after FIN/FIN starts a new flow; late ACKs still count for the old one', () => {
  const f = new Feeder();
  handshake(f, 40003, 10, 20);
  f.send(C, S, { sport: 40003, dport: 16509, seq: 11, ack: 21, flags: FIN | ACK });
  f.send(S, C, { sport: 16509, dport: 40003, seq: 21, ack: 12, flags: FIN | ACK });
  f.send(C, S, { sport: 40003, dport: 16509, seq: 12, ack: 22, flags: ACK }); // late ACK: same flow
  handshake(f, 40003, 9000, 9900);
  const flows = f.pipeline.finish().flows;
  assert.equal(flows.length, 2);
  assert.deepEqual([flows[0].stats[0].packets, flows[0].stats[1].packets, flows[0].endReason], [4, 2, 'fin']);
  assert.deepEqual([flows[1].stats[0].packets, flows[1].stats[1].packets, flows[1].info.handshakeSeen], [2, 1, true]);
});

test('port reuse without a captured close: a SYN with another ISN starts a new flow, a retransmitted SYN does not', () => {
  const f = new Feeder();
  handshake(f, 40008, 100, 200);
  f.send(C, S, { sport: 40008, dport: 16509, seq: 100, flags: SYN }); // retransmitted SYN: same ISN
  f.send(C, S, { sport: 40008, dport: 16509, seq: 101, ack: 201, flags: ACK, payload: [1, 2] });
  handshake(f, 40008, 777777, 888888); // the old connection's FIN/RST never captured
  const flows = f.pipeline.finish().flows;
  assert.equal(flows.length, 2);
  assert.deepEqual([flows[0].stats[0].packets, flows[0].stats[0].streamBytes, flows[1].stats[0].packets], [4, 2, 2]);
});

test('RST ends the stream at once; later segments are counted but not delivered', () => {
  const made: Collector[] = [];
  const f = new Feeder([detector('any', () => true, made)]);
  handshake(f, 40004, 0, 0);
  f.send(C, S, { sport: 40004, dport: 16509, seq: 1, ack: 1, flags: ACK, payload: [1] });
  f.send(S, C, { sport: 16509, dport: 40004, seq: 1, ack: 2, flags: RST | ACK });
  f.send(C, S, { sport: 40004, dport: 16509, seq: 2, ack: 1, flags: ACK, payload: [2] });
  const [flow] = f.pipeline.finish().flows;
  assert.equal(flow.endReason, 'rst');
  assert.deepEqual(made[0].bytes[0], [1]);
  assert.deepEqual(made[0].ends, ['rst']);
  assert.equal(flow.stats[0].packets, 4);
});

test('reordering, retransmission, a lost segment: delivered once in order, gap reported when ACKed past', () => {
  const made: Collector[] = [];
  const f = new Feeder([detector('any', () => true, made)]);
  handshake(f, 40005, 0, 0);
  const send = (seq: number, n: number) => f.send(C, S, { sport: 40005, dport: 16509, seq, ack: 1, flags: ACK, payload: new Array(n).fill(seq & 255) });
  send(1, 10); // bytes 0..10
  send(21, 10); // ahead: 10..20 missing for now
  send(11, 10); // late: fills the hole (out of order)
  send(11, 10); // retransmission
  send(41, 10); // ahead: 30..40 never captured
  f.send(S, C, { sport: 16509, dport: 40005, seq: 1, ack: 51, flags: ACK }); // receiver has everything
  const [flow] = f.pipeline.finish().flows;
  const c = made[0];
  assert.deepEqual(c.gaps, [[0, 30, 10]]);
  assert.deepEqual(c.bytes[0], [...new Array(10).fill(1), ...new Array(10).fill(11), ...new Array(10).fill(21), ...new Array(10).fill(-1), ...new Array(10).fill(41)]);
  assert.deepEqual([flow.stats[0].outOfOrder, flow.stats[0].retransmissions, flow.stats[0].gaps, flow.stats[0].gapBytes], [1, 1, 1, 10]);
});

test('duplicate ACKs and zero windows are counted as tshark defines them', () => {
  const f = new Feeder();
  handshake(f, 40006, 0, 0);
  for (let i = 0; i < 3; i++) f.send(S, C, { sport: 16509, dport: 40006, seq: 1, ack: 1, flags: ACK, window: 100 });
  f.send(S, C, { sport: 16509, dport: 40006, seq: 1, ack: 1, flags: ACK, window: 0 });
  f.send(S, C, { sport: 16509, dport: 40006, seq: 1, ack: 1, flags: ACK, window: 0 });
  const [flow] = f.pipeline.finish().flows;
  assert.equal(flow.stats[1].duplicateAcks, 3); // the 2nd and 3rd window-100 ACK, the 2nd window-0 ACK
  assert.equal(flow.stats[1].zeroWindows, 2);
});

test('detectors: first accepting one wins, asked once with the first payload; observers see every packet', () => {
  const made: Collector[] = [];
  const asked: string[] = [];
  const seen: number[] = [];
  const ends: (Timestamp | undefined)[] = [];
  const f = new Feeder(
    [
      { name: 'never', create: (_i, first) => { asked.push(Buffer.from(first).toString()); return undefined; } },
      detector('qemu', (_i, first) => Buffer.from(first).toString().startsWith('QEVM'), made),
    ],
    [{ packet: (p) => { seen.push(p.protocol); }, end: (at) => { ends.push(at); } }],
  );
  handshake(f, 40007, 0, 0);
  f.send(C, S, { sport: 40007, dport: 16509, seq: 1, ack: 1, flags: ACK, payload: text('QEVM') });
  f.send(C, S, { sport: 40007, dport: 16509, seq: 5, ack: 1, flags: ACK, payload: text('more') });
  f.pipeline.packet(record(ether(0x0800, ipv4({ src: C, dst: S, protocol: IpProto.UDP, payload: udp(1, 2, [0]) })), LinkType.ETHERNET, { index: 99, sec: 1001 }));
  const result = f.pipeline.finish();
  assert.deepEqual(asked, ['QEVM']);
  assert.equal(result.flows[0].protocol, 'qemu');
  assert.equal(Buffer.from(made[0].bytes[0]).toString(), 'QEVMmore');
  assert.deepEqual(seen, [6, 6, 6, 6, 6, 17]);
  assert.deepEqual(ends, [{ sec: 1001, ps: 0 }]);
  assert.equal(result.stats.tcpPackets, 5);
});

test('IPv6 flows are keyed by all 128 bits', () => {
  const p = new Pipeline('v6');
  const send = (src: string, dst: string, sport: number, dport: number, index: number) =>
    p.packet(record(ether(0x86dd, ipv6(src, dst, IpProto.TCP, tcp({ sport, dport, flags: ACK, payload: [1] }))), LinkType.ETHERNET, { index }));
  send('2001:db8::1', '2001:db8::2', 5, 6, 1);
  send('2001:db8::2', '2001:db8::1', 6, 5, 2);
  send('2001:db8:1::1', '2001:db8::2', 5, 6, 3); // differs only in the upper words
  const flows = p.finish().flows;
  assert.equal(flows.length, 2);
  assert.deepEqual([flows[0].stats[0].packets, flows[0].stats[1].packets], [1, 1]);
  assert.equal(flows[1].info.client.ip, '2001:db8:1::1');
});

test('a throwing decoder or observer is detached and reported; the flow is still counted', () => {
  const thrower: StreamConsumer = {
    data: () => { throw new Error('decoder bug'); },
    gap: () => {},
    end: () => {},
  };
  let observed = 0;
  const f = new Feeder(
    [{ name: 'buggy', create: () => thrower }],
    [{ packet: () => { if (++observed === 2) throw new Error('observer bug'); } }],
  );
  handshake(f, 40009, 0, 0);
  f.send(C, S, { sport: 40009, dport: 16509, seq: 1, ack: 1, flags: ACK, payload: [1] });
  f.send(C, S, { sport: 40009, dport: 16509, seq: 2, ack: 1, flags: ACK, payload: [2] });
  const result = f.pipeline.finish();
  assert.equal(observed, 2, 'observer detached after it threw');
  assert.equal(result.flows[0].stats[0].packets, 4);
  assert.equal(result.flows[0].stats[0].streamBytes, 2);
  assert.deepEqual(result.problems.map((p) => [p.kind, p.packet]), [['protocol', 2], ['protocol', 4]]);
  assert.match(result.problems[1].message, /flow 1 \(buggy\): data\(\) failed, decoder detached: decoder bug/);
});
