import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MultifdChannelDecoder } from '../../../src/protocols/qemu/multifd';
import { QemuStreamDetector } from '../../../src/protocols/qemu/consumer';
import type { FlowInfo } from '../../../src/flow/stream-consumer';
import { StreamBuilder } from './stream-builder';

const T0 = { sec: 5, ps: 0 };
const PAGES_ALLOC = 128; // 512 KiB / 4 KiB, as QEMU sends on x86

/** Init message and packets laid out as migration/multifd.c writes them (MultiFDInit_t,
 *  MultiFDPacket_t + the whole offset array, then the page data). */
function channel(id: number, packets: { flags: number; pages: number; dataBytes: number; num: number }[]): Uint8Array {
  const b = new StreamBuilder(4096);
  b.be32(0x11223344).be32(1).filler(16, 0xab).bytes(id).filler(7, 0).filler(32, 0);
  for (const p of packets) {
    b.be32(0x11223344).be32(1).be32(p.flags).be32(PAGES_ALLOC).be32(p.pages).be32(p.dataBytes).be64(p.num).filler(32, 0);
    const name = Buffer.alloc(256);
    name.write('pc.ram');
    b.bytes(...name);
    for (let i = 0; i < PAGES_ALLOC; i++) b.be64(i < p.pages ? i * 4096 : 0);
    b.filler(p.dataBytes, 0x5a);
  }
  return b.build();
}

const PACKETS = [
  { flags: 0, pages: 3, dataBytes: 3 * 4096, num: 0 },
  { flags: 1, pages: 0, dataBytes: 0, num: 1 }, // SYNC before an EOS on the main channel
  { flags: 0, pages: 2, dataBytes: 2 * 4096, num: 4 },
];

function decode(bytes: Uint8Array, cut: number) {
  const d = new MultifdChannelDecoder();
  d.push(bytes, 0, cut, T0);
  d.push(bytes, cut, bytes.length, T0);
  return d.result();
}

test('multifd channel: init message, packets, sync, pages counted across every split', () => {
  const bytes = channel(2, PACKETS);
  const whole = decode(bytes, bytes.length);
  assert.deepEqual(
    { channel: whole.channel, packets: whole.packets, sync: whole.syncPackets, pages: whole.pages, data: whole.dataBytes, first: whole.firstPacketNumber, last: whole.lastPacketNumber, compression: whole.compression, stopped: whole.stopped },
    { channel: 2, packets: 3, sync: 1, pages: 5, data: 5 * 4096, first: 0, last: 4, compression: 'none', stopped: undefined },
  );
  assert.equal(whole.bytes, bytes.length);
  for (let cut = 0; cut < bytes.length; cut += 13) assert.deepEqual(decode(bytes, cut), whole);
});

test('multifd channel: compressed data is skipped by its announced size; garbage stops with a reason', () => {
  const zlib = channel(0, [{ flags: 2, pages: 128, dataBytes: 777, num: 9 }, { flags: 2 | 1, pages: 0, dataBytes: 0, num: 10 }]);
  const r = decode(zlib, 100);
  assert.equal(r.compression, 'zlib');
  assert.equal(r.pages, 128);
  assert.equal(r.packets, 2);
  assert.equal(r.stopped, undefined);

  const broken = channel(0, PACKETS);
  broken[64 + 3] = 0x45; // second word of the first packet header's magic
  assert.match(decode(broken, broken.length).stopped ?? '', /bad multifd magic/);
});

test('the detector hands multifd channels their decoder', () => {
  const flow: FlowInfo = { id: 3, client: { ip: '10.0.0.1', port: 40002 }, server: { ip: '10.0.0.2', port: 49152 }, firstSeen: T0, firstPacket: 1, handshakeSeen: true };
  const detector = new QemuStreamDetector();
  const bytes = channel(1, PACKETS);
  const consumer = detector.create(flow, bytes.subarray(0, 16), 0);
  assert.ok(consumer);
  consumer.data(bytes, 0, bytes.length, 0, 0, T0, 1);
  consumer.data(Uint8Array.from([1, 2, 3]), 0, 3, 1, 0, T0, 2); // nothing flows back on multifd channels
  assert.equal(detector.streams[0].kind, 'multifd');
  assert.equal(detector.streams[0].multifd.result().pages, 5);
});
