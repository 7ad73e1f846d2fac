// RPC framing: the same messages come out whatever the segmentation; holes inside a message
// keep the framing, holes over a header are resynchronised; STREAM data is passed on, not kept.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Timestamp } from '../../../src/core/timestamp';
import type { Direction, FlowInfo, StreamConsumer } from '../../../src/flow/stream-consumer';
import { LibvirtConversation } from '../../../src/protocols/libvirt/conversation';
import { libvirtDetector, looksLikeLibvirt } from '../../../src/protocols/libvirt/detector';
import { decodePayload } from '../../../src/protocols/libvirt/payloads';
import { MessageStatus, MessageType, RpcFramer, type LibvirtMessage, type RpcHeader } from '../../../src/protocols/libvirt/rpc';
import { concat, rpcMessage, XdrWriter } from './rpc-builder';

const T0: Timestamp = { sec: 1000, ps: 0 };

interface Collected {
  messages: LibvirtMessage[];
  payloads: (Uint8Array | undefined)[];
  stream: number[];
  streamGaps: number;
  problems: string[];
}

function framer(wants = true, resync = false): { framer: RpcFramer; out: Collected } {
  const out: Collected = { messages: [], payloads: [], stream: [], streamGaps: 0, problems: [] };
  const f = new RpcFramer(
    0,
    {
      wantsPayload: () => wants,
      message: (m, p) => {
        out.messages.push(m);
        out.payloads.push(p && p.slice());
      },
      streamData: (_h: RpcHeader, buf, start, end) => out.stream.push(...buf.subarray(start, end)),
      streamGap: (_h, length) => (out.streamGaps += length),
      problem: (detail) => out.problems.push(detail),
    },
    resync,
  );
  return { framer: f, out };
}

/** Feed `bytes` cut at `cuts` (sorted offsets); each chunk is its own "packet". */
function feed(f: RpcFramer, bytes: Uint8Array, cuts: number[]): void {
  const points = [0, ...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length];
  for (let i = 0; i + 1 < points.length; i++) {
    if (points[i] === points[i + 1]) continue;
    // a fresh buffer with junk around the chunk: the framer must honour start/end
    const chunk = bytes.subarray(points[i], points[i + 1]);
    const buf = concat([Uint8Array.of(0xee, 0xee), chunk, Uint8Array.of(0xee)]);
    f.data(buf, 2, 2 + chunk.length, points[i], { sec: T0.sec + i, ps: 0 }, i + 1);
  }
}

const sampleMessages = (): Uint8Array[] => [
  rpcMessage({ procedure: 66, type: MessageType.CALL, serial: 0 }),
  rpcMessage({ procedure: 66, type: MessageType.REPLY, serial: 0 }, new XdrWriter().uint(1).uint(0).bytes()),
  rpcMessage({ procedure: 1, type: MessageType.CALL, serial: 2 }, new XdrWriter().optString('qemu:///system').uint(0).bytes()),
  rpcMessage({ procedure: 304, type: MessageType.STREAM, serial: 9, status: MessageStatus.CONTINUE }, Uint8Array.from({ length: 300 }, (_, i) => i & 255)),
  rpcMessage({ procedure: 304, type: MessageType.STREAM, serial: 9, status: MessageStatus.OK }),
  rpcMessage({ program: 0x6b656570, procedure: 1, type: MessageType.MESSAGE, serial: 0 }),
];

test('framing: whole messages, header fields, payload kept only for decoding', () => {
  const { framer: f, out } = framer();
  const parts = sampleMessages();
  feed(f, concat(parts), []);
  assert.deepEqual(
    out.messages.map((m) => [m.length, m.program, m.procedure, m.type, m.serial, m.status]),
    [
      [28, 0x20008086, 66, 0, 0, 0],
      [36, 0x20008086, 66, 1, 0, 0],
      [56, 0x20008086, 1, 0, 2, 0], // as on the real wire: flag, length 14, 16 bytes, flags
      [328, 0x20008086, 304, 3, 9, 2],
      [28, 0x20008086, 304, 3, 9, 0],
      [28, 0x6b656570, 1, 2, 0, 0],
    ],
  );
  assert.equal(out.payloads[3], undefined, 'stream payload is not buffered');
  assert.deepEqual(out.stream, Array.from({ length: 300 }, (_, i) => i & 255));
  assert.deepEqual(out.problems, []);
});

test('framing property: any segmentation yields the same messages, stream bytes and instants', () => {
  const whole = concat(sampleMessages());
  const reference = framer();
  feed(reference.framer, whole, []);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: whole.length }), { maxLength: 40 }), (cuts) => {
      const { framer: f, out } = framer();
      feed(f, whole, cuts);
      const strip = (m: LibvirtMessage) => [m.length, m.procedure, m.type, m.serial, m.status, m.streamOffset];
      assert.deepEqual(out.messages.map(strip), reference.out.messages.map(strip));
      assert.deepEqual(out.payloads, reference.out.payloads);
      assert.deepEqual(out.stream, reference.out.stream);
      // each message is stamped with the chunk that completed it, and began no later
      for (const m of out.messages) assert.ok(m.firstPacket <= m.packet);
    }),
    { numRuns: 300 },
  );
});

test('framing: a hole inside a payload keeps the framing; the message is marked damaged', () => {
  const parts = sampleMessages();
  const whole = concat(parts);
  const { framer: f, out } = framer();
  const holeStart = parts[0].length + parts[1].length + 30; // inside CONNECT_OPEN's payload
  f.data(whole, 0, holeStart, 0, T0, 1);
  f.gap(holeStart, 10, T0);
  f.data(whole, holeStart + 10, whole.length, holeStart + 10, T0, 2);
  assert.equal(out.messages.length, parts.length);
  assert.equal(out.messages[2].damaged, true);
  assert.equal(out.payloads[2], undefined, 'a damaged payload is not decoded');
  assert.equal(out.messages[3].damaged, undefined);
});

test('framing: a hole inside STREAM data is passed on as a stream gap', () => {
  const parts = sampleMessages();
  const whole = concat(parts);
  const { framer: f, out } = framer();
  const streamPayload = parts[0].length + parts[1].length + parts[2].length + 28;
  f.data(whole, 0, streamPayload + 100, 0, T0, 1);
  f.gap(streamPayload + 100, 50, T0);
  f.data(whole, streamPayload + 150, whole.length, streamPayload + 150, T0, 2);
  assert.equal(out.streamGaps, 50);
  assert.equal(out.messages.length, parts.length);
});

test('framing property: after a hole over headers, resync finds the next message', () => {
  const parts = sampleMessages();
  const whole = concat(parts);
  const starts = parts.map((_, i) => parts.slice(0, i).reduce((n, p) => n + p.length, 0));
  fc.assert(
    fc.property(fc.integer({ min: 1, max: parts.length - 2 }), fc.integer({ min: 0, max: 27 }), fc.integer({ min: 1, max: 60 }), (index, into, length) => {
      // the hole starts inside the header of message `index`
      const holeStart = starts[index] + into;
      const holeEnd = Math.min(holeStart + length, whole.length);
      const { framer: f, out } = framer();
      f.data(whole, 0, holeStart, 0, T0, 1);
      f.gap(holeStart, holeEnd - holeStart, T0);
      f.data(whole, holeEnd, whole.length, holeEnd, T0, 2);
      const firstWhole = starts.findIndex((s) => s >= holeEnd);
      const expected = firstWhole < 0 ? [] : parts.slice(firstWhole).map((p) => p.length);
      // messages before the hole, then (possibly) nothing spurious, then every message after it
      const got = out.messages.filter((m) => m.streamOffset >= holeEnd).map((m) => m.length);
      assert.deepEqual(got, expected);
      assert.ok(out.messages.filter((m) => m.streamOffset < holeStart).length === index);
    }),
    { numRuns: 300 },
  );
});

test('framing: a garbage length resynchronises and reports a problem', () => {
  const { framer: f, out } = framer();
  const junk = new XdrWriter().uint(5).uint(0xdeadbeef).uint(7).bytes();
  const good = concat(sampleMessages());
  feed(f, concat([junk, good]), [3, 17, 40]);
  assert.ok(out.problems.length >= 1);
  assert.deepEqual(out.messages.map((m) => m.procedure), [66, 66, 1, 304, 304, 1]);
});

test('payloads: error reply, typed params, PREPARE reply uri_out', () => {
  const err = new XdrWriter().int(38).int(0).optString("Cannot get interface MTU on 'nobr0': No such device").int(2).uint(0).optString('%s').optString(undefined).optString(undefined).int(0).int(0).uint(0).bytes();
  const h = (procedure: number, type: number, status = 0): RpcHeader => ({ length: 0, program: 0x20008086, version: 1, procedure, type, serial: 9, status });
  assert.deepEqual(decodePayload(h(303, 1, 1), err).error, { code: 38, domain: 0, message: "Cannot get interface MTU on 'nobr0': No such device", level: 2, str1: '%s', str2: undefined, str3: undefined });

  const xml = "<domain type='qemu'><name>guest-7</name><uuid>11111111-2222-4333-8444-555555555555</uuid></domain>";
  const params = new XdrWriter()
    .uint(4)
    .string('destination_xml').int(7).string(xml)
    .string('migrate_uri').int(7).string('tcp:10.0.0.2:49153')
    .string('bandwidth').int(4).hyper(12)
    .string('migrate_disks').int(7).string('vda');
  const call = params.opaque(Uint8Array.of(1, 2, 3)).uint(0x1 | 0x2).bytes();
  const body = decodePayload(h(303, 0), call).body!;
  assert.equal(body['migrateUri'], 'tcp:10.0.0.2:49153');
  assert.equal(body['bandwidthMiBs'], 12);
  assert.equal(body['domainName'], 'guest-7');
  assert.equal(body['domainUuid'], '11111111-2222-4333-8444-555555555555');
  assert.equal(body['domainXmlBytes'], xml.length);
  assert.equal(body['cookieBytes'], 3);
  assert.equal(body['flags'], 3);

  const reply = new XdrWriter().opaque(new Uint8Array(5)).optString('tcp:10.0.0.2:49153').bytes();
  assert.deepEqual(decodePayload(h(303, 1), reply).body, { cookieBytes: 5, uriOut: 'tcp:10.0.0.2:49153' });
  // truncated payload: a problem, no exception
  assert.match(decodePayload(h(303, 1), reply.subarray(0, 10)).problem ?? '', /needs/);
});

test('conversation: calls pair with replies by serial; tunnelled data reaches a QEMU consumer as its own stream', () => {
  const flow: FlowInfo = { id: 1, client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port: 16509 }, firstSeen: T0, firstPacket: 1, handshakeSeen: true };
  const seen: LibvirtMessage[] = [];
  const tunnelled: number[] = [];
  let tunnelEnded = '';
  const sink: StreamConsumer = {
    data: (buf, s, e, dir: Direction, offset) => {
      assert.equal(dir, 0);
      assert.equal(offset, tunnelled.length);
      tunnelled.push(...buf.subarray(s, e));
    },
    gap: () => assert.fail('no gap expected'),
    end: (reason) => (tunnelEnded = reason),
  };
  const conv = new LibvirtConversation(flow, { message: (_c, m) => seen.push(m) }, { tunnelDetectors: [{ name: 'qemu', create: (_f, first) => (first[0] === 0 ? sink : undefined) }] });
  const toServer = concat([
    rpcMessage({ procedure: 1, type: MessageType.CALL, serial: 2 }, new XdrWriter().optString(undefined).uint(0).bytes()),
    rpcMessage({ procedure: 304, type: MessageType.STREAM, serial: 9, status: 2 }, Uint8Array.from({ length: 100 }, (_, i) => i)),
    rpcMessage({ procedure: 304, type: MessageType.STREAM, serial: 9, status: 2 }, Uint8Array.from({ length: 50 }, (_, i) => 100 + i)),
    rpcMessage({ procedure: 304, type: MessageType.STREAM, serial: 9, status: 0 }),
  ]);
  conv.data(toServer, 0, 37, 0, 0, T0, 2);
  conv.data(toServer, 37, toServer.length, 0, 37, T0, 3);
  const reply = rpcMessage({ procedure: 1, type: MessageType.REPLY, serial: 2 });
  conv.data(reply, 0, reply.length, 1, 0, T0, 4);
  conv.end('fin', T0);
  assert.deepEqual(tunnelled, Array.from({ length: 150 }, (_, i) => i));
  assert.equal(tunnelEnded, 'fin');
  assert.deepEqual(conv.unanswered, []);
  const t = conv.tunnels.get('0:9')!;
  assert.equal(t.bytes, 150);
  assert.equal(t.messages, 3);
  assert.equal(t.endStatus, 0);
  assert.equal(seen.length, 5);
});

test('detector: libvirt by port or content, TLS and SSH as opaque', () => {
  const flow = (port: number): FlowInfo => ({ id: 1, client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port }, firstSeen: T0, firstPacket: 1, handshakeSeen: true });
  const opaque: string[] = [];
  const d = libvirtDetector({ opaque: (c) => opaque.push(c.kind) });
  const first = rpcMessage({ procedure: 66, type: MessageType.CALL, serial: 0 });
  assert.ok(looksLikeLibvirt(first));
  assert.ok(d.create(flow(16509), first, 0) instanceof LibvirtConversation);
  assert.ok(d.create(flow(22222), first, 0) instanceof LibvirtConversation, 'non-default port by content');
  assert.equal(d.create(flow(8080), new TextEncoder().encode('GET / HTTP/1.1\r\n'), 0), undefined);
  const tls = d.create(flow(16514), Uint8Array.of(0x16, 0x03, 0x01, 0x02, 0x00), 0)!;
  const ssh = d.create(flow(22), new TextEncoder().encode('SSH-2.0-OpenSSH_9.2'), 0)!;
  tls.end('fin', T0);
  ssh.end('fin', T0);
  assert.deepEqual(opaque, ['tls', 'ssh']);
});
