// Decoder unit tests on hand-built frames (test/decode/frames.ts): every link type, VLAN stacks,
// IPv4 options and fragments, IPv6 extension headers and fragments, TCP options, UDP, ICMP(v6),
// ARP/RARP, and frames cut by the snaplen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LinkType } from '../../src/capture/types';
import { PacketDecoder } from '../../src/decode/decoder';
import { IpProto, L3, Layer, TcpFlag, formatIpv6Words } from '../../src/decode/packet';
import { bytes, ether, icmpEcho, ip4, ipv4, ipv6, MAC_A, nullHeader, record, sll, sll2, tcp, udp } from './frames';

const payload = new Uint8Array([1, 2, 3, 4, 5]);
const tcpSegment = () => tcp({ sport: 48546, dport: 16509, seq: 0xfffffff0, ack: 77, flags: TcpFlag.ACK | TcpFlag.PSH, window: 501, payload });
const ipPacket = () => ipv4({ src: '10.77.0.1', dst: '10.77.0.2', protocol: IpProto.TCP, payload: tcpSegment() });

function assertTcp(d: PacketDecoder, frame: Uint8Array, linkType: number): void {
  const p = d.decode(record(frame, linkType, { offset: 3 }));
  assert.equal(p.decodedTo, Layer.TRANSPORT, `link type ${linkType}`);
  assert.equal(p.l3, L3.IPV4);
  assert.equal(p.srcText(), '10.77.0.1');
  assert.equal(p.dstText(), '10.77.0.2');
  assert.equal(p.protocol, IpProto.TCP);
  assert.equal(p.srcPort, 48546);
  assert.equal(p.dstPort, 16509);
  assert.equal(p.seq, 0xfffffff0);
  assert.equal(p.ack, 77);
  assert.equal(p.tcpFlags, TcpFlag.ACK | TcpFlag.PSH);
  assert.equal(p.window, 501);
  assert.deepEqual([...p.payload()], [...payload]);
  assert.equal(p.payloadWireLength, 5);
  assert.equal(p.snaplenCut, false);
}

test('every link type reaches the same TCP segment', () => {
  const d = new PacketDecoder();
  assertTcp(d, ether(0x0800, ipPacket()), LinkType.ETHERNET);
  assertTcp(d, sll(0x0800, ipPacket()), LinkType.LINUX_SLL);
  assertTcp(d, sll2(0x0800, ipPacket()), LinkType.LINUX_SLL2);
  assertTcp(d, ipPacket(), LinkType.RAW);
  assertTcp(d, ipPacket(), LinkType.IPV4);
  assertTcp(d, nullHeader(2, true, ipPacket()), LinkType.NULL);
  assertTcp(d, nullHeader(2, false, ipPacket()), LinkType.NULL);
  assertTcp(d, nullHeader(2, false, ipPacket()), LinkType.LOOP);
});

test('Ethernet MACs, SLL/SLL2 packet type and address', () => {
  const d = new PacketDecoder();
  let p = d.decode(record(ether(0x0800, ipPacket()), LinkType.ETHERNET));
  assert.equal(p.macText(p.srcMacOffset), '52:54:00:77:00:01');
  assert.equal(p.macText(p.dstMacOffset), '52:54:00:77:00:02');
  p = d.decode(record(sll(0x0800, ipPacket(), 4), LinkType.LINUX_SLL));
  assert.equal(p.sllPacketType, 4);
  assert.equal(p.macText(p.srcMacOffset), '52:54:00:77:00:01');
  assert.equal(p.dstMacOffset, -1);
  p = d.decode(record(sll2(0x86dd, ipv6('fe80::1', 'fe80::2', IpProto.UDP, udp(1, 2))), LinkType.LINUX_SLL2));
  assert.equal(p.sllPacketType, 4);
  assert.equal(p.l3, L3.IPV6);
  assert.equal(p.macText(p.srcMacOffset), '52:54:00:77:00:01');
});

test('802.1Q, 802.1ad QinQ and the old 0x9100 tag are stripped, ids kept outermost first', () => {
  const d = new PacketDecoder();
  let p = d.decode(record(ether(0x0800, ipPacket(), [[0x8100, 0x2064]]), LinkType.ETHERNET)); // PCP 1, VID 100
  assert.equal(p.vlanCount, 1);
  assert.equal(p.vlanIds[0], 100);
  assert.equal(p.isTcp, true);
  p = d.decode(record(ether(0x0800, ipPacket(), [[0x88a8, 200], [0x8100, 10]]), LinkType.ETHERNET));
  assert.equal(p.vlanCount, 2);
  assert.deepEqual([p.vlanTpids[0], p.vlanIds[0], p.vlanTpids[1], p.vlanIds[1]], [0x88a8, 200, 0x8100, 10]);
  assert.equal(p.etherType, 0x0800);
  assert.equal(p.dstPort, 16509);
  p = d.decode(record(ether(0x0800, ipPacket(), [[0x9100, 5], [0x8100, 6]]), LinkType.ETHERNET));
  assert.deepEqual([p.vlanCount, p.vlanIds[0], p.vlanIds[1], p.isTcp], [2, 5, 6, true]);
});

test('NULL with AF_INET6 in both byte orders (Linux, BSD, Darwin values)', () => {
  const d = new PacketDecoder();
  for (const family of [10, 24, 28, 30]) {
    for (const le of [true, false]) {
      const p = d.decode(record(nullHeader(family, le, ipv6('2001:db8::1', '2001:db8::2', IpProto.TCP, tcpSegment())), LinkType.NULL));
      assert.equal(p.l3, L3.IPV6, `family ${family} le ${le}`);
      assert.equal(p.isTcp, true);
    }
  }
});

test('IPv4 options are skipped by the header length; Ethernet padding is not payload', () => {
  const d = new PacketDecoder();
  const packet = ipv4({ src: '1.2.3.4', dst: '5.6.7.8', protocol: IpProto.UDP, payload: udp(5353, 53, [9, 9]), options: [0x94, 4, 0, 0], ttl: 3 });
  const padded = bytes(ether(0x0800, packet), new Array(20).fill(0xee)); // padding after the datagram
  const p = d.decode(record(padded, LinkType.ETHERNET));
  assert.equal(p.ipHeaderLength, 24);
  assert.equal(p.ttl, 3);
  assert.equal(p.isUdp, true);
  assert.deepEqual([p.srcPort, p.dstPort, p.payloadLength, p.payloadWireLength], [5353, 53, 2, 2]);
});

test('IPv4 fragments are reassembled (out of order) and the transport decoded from the whole datagram', () => {
  const d = new PacketDecoder();
  const data = new Uint8Array(3000).map((_, i) => (i * 7) & 255);
  const datagram = udp(4000, 5000, data); // 3008 bytes
  const parts: [number, number][] = [[0, 1480], [1480, 2960], [2960, 3008]];
  const frames = parts.map(([a, b]) => ether(0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: IpProto.UDP, id: 4242, fragmentOffset: a, moreFragments: b < 3008, payload: datagram.subarray(a, b) })));
  let p = d.decode(record(frames[2], LinkType.ETHERNET));
  assert.equal(p.isFragment, true);
  assert.equal(p.decodedTo, Layer.NETWORK);
  assert.equal(p.fragmentOffset, 2960);
  p = d.decode(record(frames[0], LinkType.ETHERNET));
  assert.equal(p.decodedTo, Layer.NETWORK);
  assert.equal(p.moreFragments, true);
  p = d.decode(record(frames[1], LinkType.ETHERNET));
  assert.equal(p.reassembled, true);
  assert.equal(p.isUdp, true);
  assert.deepEqual([p.srcPort, p.dstPort, p.payloadLength], [4000, 5000, 3000]);
  assert.deepEqual(p.payload(), data);
  assert.equal(d.fragments.stats.reassembled, 1);
  assert.equal(d.fragments.pendingDatagrams, 0);
});

test('fragment reassembly is bounded: incomplete datagrams time out or are evicted', () => {
  const d = new PacketDecoder({ maxDatagrams: 2, maxBytes: 1 << 20, timeoutSec: 5 });
  const frag = (id: number, sec: number) =>
    d.decode(record(ether(0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: IpProto.UDP, id, moreFragments: true, payload: new Uint8Array(8) })), LinkType.ETHERNET, { sec }));
  frag(1, 100);
  frag(2, 100);
  frag(3, 100); // evicts id 1
  assert.equal(d.fragments.stats.evicted, 1);
  frag(4, 200); // ids 2 and 3 are older than 5 s
  assert.equal(d.fragments.stats.timedOut, 2);
  assert.equal(d.fragments.pendingDatagrams, 1);
});

test('IPv6 extension headers (hop-by-hop, routing, destination options) are walked to TCP', () => {
  const d = new PacketDecoder();
  const frame = ether(0x86dd, ipv6('2001:db8::10', 'fe80::1:2', IpProto.TCP, tcpSegment(), [{ type: 0, body: [1, 4, 0, 0, 0, 0] }, { type: 43, body: [0, 0, 0, 0, 0, 0, ...new Array(16).fill(0)] }, { type: 60 }]));
  const p = d.decode(record(frame, LinkType.ETHERNET));
  assert.equal(p.l3, L3.IPV6);
  assert.equal(p.ipHeaderLength, 40 + 8 + 24 + 8);
  assert.equal(p.srcText(), '2001:db8::10');
  assert.equal(p.dstText(), 'fe80::1:2');
  assert.equal(p.isTcp, true);
  assert.deepEqual([...p.payload()], [...payload]);
});

test('IPv6 fragments are reassembled; an atomic fragment is a whole datagram', () => {
  const d = new PacketDecoder();
  const segment = tcp({ sport: 1, dport: 2, seq: 5, payload: new Uint8Array(100).fill(3) }); // 120 bytes
  const first = ether(0x86dd, ipv6('::1', '::2', IpProto.TCP, segment.subarray(0, 64), [{ type: 44, fragmentOffset: 0, moreFragments: true, id: 99 }]));
  const second = ether(0x86dd, ipv6('::1', '::2', IpProto.TCP, segment.subarray(64), [{ type: 44, fragmentOffset: 64, moreFragments: false, id: 99 }]));
  let p = d.decode(record(first, LinkType.ETHERNET));
  assert.deepEqual([p.isFragment, p.decodedTo, p.ipId], [true, Layer.NETWORK, 99]);
  p = d.decode(record(second, LinkType.ETHERNET));
  assert.equal(p.reassembled, true);
  assert.equal(p.isTcp, true);
  assert.equal(p.payloadLength, 100);
  p = d.decode(record(ether(0x86dd, ipv6('::1', '::2', IpProto.UDP, udp(7, 8, [1]), [{ type: 44, fragmentOffset: 0, moreFragments: false }])), LinkType.ETHERNET));
  assert.deepEqual([p.isFragment, p.isUdp, p.payloadLength], [false, true, 1]);
});

test('TCP options: MSS, window scale, SACK permitted, SACK blocks, timestamps', () => {
  const d = new PacketDecoder();
  const options = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 18, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0, 0, 0x30, 0, 0, 0, 0x40, 0];
  const p = d.decode(record(ether(0x0800, ipv4({ src: '1.1.1.1', dst: '2.2.2.2', protocol: IpProto.TCP, payload: tcp({ sport: 1, dport: 2, flags: TcpFlag.SYN, options }) })), LinkType.ETHERNET));
  assert.equal(p.mss, 1460);
  assert.equal(p.windowScale, 7);
  assert.equal(p.sackPermitted, true);
  assert.deepEqual([p.hasTimestamps, p.tsVal, p.tsEcr], [true, 1, 2]);
  assert.equal(p.sackCount, 2);
  assert.deepEqual([...p.sackBlocks.subarray(0, 4)], [0x1000, 0x2000, 0x3000, 0x4000]);
  // the layout of Linux data segments: NOP NOP TIMESTAMPS
  const ts = d.decode(record(ether(0x0800, ipv4({ src: '1.1.1.1', dst: '2.2.2.2', protocol: IpProto.TCP, payload: tcp({ sport: 1, dport: 2, options: [1, 1, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 9], payload: [7] }) })), LinkType.ETHERNET));
  assert.deepEqual([ts.hasTimestamps, ts.tsVal, ts.tsEcr, ts.mss, ts.payloadLength], [true, 0xdeadbeef, 9, -1, 1]);
  // the next packet without options must not inherit them
  const q = d.decode(record(ether(0x0800, ipPacket()), LinkType.ETHERNET));
  assert.deepEqual([q.mss, q.windowScale, q.sackPermitted, q.sackCount, q.hasTimestamps], [-1, -1, false, 0, false]);
});

test('ICMP and ICMPv6 echo id/seq; other ICMP types have none', () => {
  const d = new PacketDecoder();
  let p = d.decode(record(ether(0x0800, ipv4({ src: '10.77.0.3', dst: '10.77.0.10', protocol: IpProto.ICMP, payload: icmpEcho(8, 0x1234, 42, [0xab]) })), LinkType.ETHERNET));
  assert.deepEqual([p.isIcmp, p.icmpType, p.icmpCode, p.icmpId, p.icmpSeq, p.payloadLength], [true, 8, 0, 0x1234, 42, 1]);
  p = d.decode(record(ether(0x86dd, ipv6('fe80::1', 'fe80::2', IpProto.ICMPV6, icmpEcho(129, 7, 8))), LinkType.ETHERNET));
  assert.deepEqual([p.isIcmp, p.icmpType, p.icmpId, p.icmpSeq], [true, 129, 7, 8]);
  p = d.decode(record(ether(0x0800, ipv4({ src: '1.1.1.1', dst: '2.2.2.2', protocol: IpProto.ICMP, payload: new Uint8Array([3, 1, 0, 0, 0, 0, 0, 0]) })), LinkType.ETHERNET));
  assert.deepEqual([p.icmpType, p.icmpCode, p.icmpId, p.icmpSeq], [3, 1, -1, -1]);
});

test('ARP and RARP (the guest announcing itself after migration)', () => {
  const d = new PacketDecoder();
  const body = (op: number) => bytes([0, 1, 8, 0, 6, 4, 0, op], MAC_A, ip4('10.77.0.10'), MAC_A, ip4('10.77.0.10'));
  let p = d.decode(record(ether(0x0806, body(1)), LinkType.ETHERNET));
  assert.deepEqual([p.l3, p.arpOp, p.arpSenderIp, p.arpTargetIp], [L3.ARP, 1, 0x0a4d000a, 0x0a4d000a]);
  assert.equal(p.macText(p.arpSenderMacOffset), '52:54:00:77:00:01');
  p = d.decode(record(ether(0x8035, body(3)), LinkType.ETHERNET));
  assert.deepEqual([p.l3, p.arpOp], [L3.RARP, 3]);
});

test('snaplen cuts: decoded as far as the bytes go, flagged and counted', () => {
  const d = new PacketDecoder();
  const frame = ether(0x0800, ipPacket()); // 14 + 20 + 20 + 5
  let p = d.decode(record(frame, LinkType.ETHERNET, { caplen: 14 + 20 + 20 + 2 }));
  assert.deepEqual([p.isTcp, p.snaplenCut, p.payloadLength, p.payloadWireLength], [true, true, 2, 5]);
  p = d.decode(record(frame, LinkType.ETHERNET, { caplen: 14 + 20 + 10 }));
  assert.deepEqual([p.decodedTo, p.snaplenCut, p.protocol, p.srcText()], [Layer.NETWORK, true, IpProto.TCP, '10.77.0.1']);
  p = d.decode(record(frame, LinkType.ETHERNET, { caplen: 20 }));
  assert.deepEqual([p.decodedTo, p.snaplenCut, p.l3], [Layer.LINK, true, L3.IPV4]);
  p = d.decode(record(frame, LinkType.ETHERNET, { caplen: 10 }));
  assert.deepEqual([p.decodedTo, p.snaplenCut], [Layer.NONE, true]);
  assert.equal(d.counters.snaplenCut, 4);
});

test('malformed headers stop decoding without throwing', () => {
  const d = new PacketDecoder();
  const bad = ipv4({ src: '1.1.1.1', dst: '2.2.2.2', protocol: IpProto.TCP, payload: tcpSegment(), totalLength: 10 });
  let p = d.decode(record(ether(0x0800, bad), LinkType.ETHERNET));
  assert.deepEqual([p.malformed, p.decodedTo], [true, Layer.LINK]);
  const badTcp = tcpSegment();
  badTcp[12] = 0x30; // data offset 12 bytes < 20
  p = d.decode(record(ether(0x0800, ipv4({ src: '1.1.1.1', dst: '2.2.2.2', protocol: IpProto.TCP, payload: badTcp })), LinkType.ETHERNET));
  assert.deepEqual([p.malformed, p.decodedTo, p.isTcp], [true, Layer.NETWORK, false]);
  assert.equal(d.counters.malformed, 2);
});

test('IPv6 text follows RFC 5952', () => {
  assert.equal(formatIpv6Words([0x20010db8, 0, 0, 1]), '2001:db8::1');
  assert.equal(formatIpv6Words([0, 0, 0, 0]), '::');
  assert.equal(formatIpv6Words([0x20010db8, 0x00000001, 0x00010001, 0x00010001]), '2001:db8:0:1:1:1:1:1');
  assert.equal(formatIpv6Words([0x20010000, 0x00010000, 0, 0x00000001]), '2001:0:1::1');
});

test('random bytes under any link type never throw and never read out of bounds', () => {
  const d = new PacketDecoder();
  const links = Object.values(LinkType);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(...links), fc.nat(200), (frame, linkType, cut) => {
      const r = record(frame, linkType, { caplen: Math.min(frame.length, cut) });
      const p = d.decode(r);
      const end = p.reassembled ? p.buf.length : r.offset + r.caplen;
      assert.ok(p.payloadOffset + p.payloadLength <= end, 'payload within the captured bytes');
      assert.ok(p.payloadLength >= 0);
    }),
    { numRuns: 3000 },
  );
});
