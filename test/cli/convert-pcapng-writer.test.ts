// The streaming pcapng writer behind `convert` (and live --write): random interface sets and
// packet lists read back exactly through migscope's pcapng reader (an independent parser), for
// every power-of-ten resolution; tiny flush buffers; picosecond interfaces get an if_tsoffset.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import fc from 'fast-check';
import { PcapngWriter, type PcapngInterfaceInfo } from '../../src/capture/pcapng-writer';
import { readCaptureBytes } from '../../src/capture/reader';
import { collector } from '../capture/collect';

function writeToMemory(build: (w: PcapngWriter) => void, comment?: string): Buffer[] {
  const chunks: Buffer[] = [];
  const writer = new PcapngWriter((chunk) => chunks.push(Buffer.from(chunk)), { comment });
  build(writer);
  writer.close();
  return chunks;
}

const interfaceArb: fc.Arbitrary<PcapngInterfaceInfo> = fc.record({
  linkType: fc.constantFrom(1, 101, 113, 276),
  snaplen: fc.constantFrom(0, 65535, 262144),
  tsDigits: fc.constantFrom(0, 3, 6, 9, 12),
  name: fc.option(fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !s.includes('\0')), { nil: undefined }),
});

test('property: random interfaces and packets read back exactly at each interface resolution', () => {
  fc.assert(
    fc.property(
      fc.array(interfaceArb, { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 86_400 * 2, max: 0xffffffff - 20_000_000 }),
      fc.array(fc.record({ iface: fc.nat(3), delta: fc.integer({ min: -40_000, max: 18_000_000 }), fraction: fc.integer({ min: 0, max: 999_999_999_999 }), data: fc.uint8Array({ maxLength: 200 }), extra: fc.nat(50) }), { maxLength: 40 }),
      fc.option(fc.string({ maxLength: 40 }).filter((s) => !s.includes('\0')), { nil: undefined }),
      (interfaces, base, packets, comment) => {
        const expected: { iface: number; sec: number; ps: number; data: Buffer; wirelen: number }[] = [];
        const chunks = writeToMemory((w) => {
          for (const info of interfaces) w.addInterface(info);
          for (const [i, p] of packets.entries()) {
            // The first packet fixes if_tsoffset (a day before it): later ones may be a little earlier.
            const iface = p.iface % interfaces.length;
            const unit = 10 ** (12 - interfaces[iface].tsDigits);
            const ps = Math.floor(p.fraction / unit) * unit; // representable at that resolution
            const sec = base + (i === 0 ? 0 : p.delta);
            w.writePacket(iface, sec, ps, p.data, p.data.length + p.extra);
            expected.push({ iface, sec, ps, data: Buffer.from(p.data), wirelen: p.data.length + p.extra });
          }
        }, comment);
        const got = collector();
        const summary = readCaptureBytes('mem', chunks, got);
        assert.deepEqual(summary.problems.map(String), []);
        assert.equal(summary.comment, comment || undefined);
        assert.deepEqual(summary.interfaces.map((i) => [i.linkType, i.snaplen, i.tsDigits, i.name]), interfaces.map((i) => [i.linkType, i.snaplen, i.tsDigits, i.name || undefined]));
        assert.deepEqual(got.packets.map((p) => [p.interfaceId, p.sec, p.ps, p.wirelen, p.data.toString('hex')]), expected.map((e) => [e.iface, e.sec, e.ps, e.wirelen, e.data.toString('hex')]));
      },
    ),
    { numRuns: 200 },
  );
});

test('a finer timestamp than the interface holds is truncated, never rounded up into the next unit', () => {
  const chunks = writeToMemory((w) => {
    w.addInterface({ linkType: 1, tsDigits: 6 });
    w.writePacket(0, 1_700_000_000, 999_999_999_999, Buffer.alloc(10));
  });
  const got = collector();
  readCaptureBytes('mem', chunks, got);
  assert.deepEqual([got.packets[0].sec, got.packets[0].ps], [1_700_000_000, 999_999_000_000]);
});

test('picosecond interfaces: 64-bit overflow and times before if_tsoffset are refused loudly', () => {
  const chunks: Buffer[] = [];
  const w = new PcapngWriter((c) => chunks.push(Buffer.from(c)));
  w.addInterface({ linkType: 1, tsDigits: 12 });
  w.writePacket(0, 1_795_389_892, 437_462_011_123, Buffer.alloc(10));
  assert.throws(() => w.writePacket(0, 1_795_389_892 + 300 * 86_400, 0, Buffer.alloc(10)), /does not fit 64 bits/);
  assert.throws(() => w.writePacket(0, 1_795_389_892 - 3 * 86_400, 0, Buffer.alloc(10)), /before interface if_tsoffset/);
  assert.throws(() => w.writePacket(1, 1_795_389_892, 0, Buffer.alloc(10)), /no interface 1/);
  w.close();
  const got = collector();
  readCaptureBytes('mem', chunks, got);
  assert.equal(got.packets.length, 1);
  assert.equal(got.packets[0].ps, 437_462_011_123);
});

test('an interface added after packets were written gets its IDB before its first packet', () => {
  const chunks = writeToMemory((w) => {
    w.addInterface({ linkType: 1, tsDigits: 9, name: 'first' });
    w.writePacket(0, 10, 1000, Buffer.from([1]));
    w.addInterface({ linkType: 1, tsDigits: 12, name: 'late' });
    w.writePacket(1, 10, 1, Buffer.from([2]));
    w.writePacket(0, 11, 0, Buffer.from([3]));
  });
  const got = collector();
  const summary = readCaptureBytes('mem', chunks, got);
  assert.deepEqual(summary.problems, []);
  assert.deepEqual(summary.interfaces.map((i) => i.name), ['first', 'late']);
  assert.deepEqual(got.packets.map((p) => [p.interfaceId, p.sec, p.ps]), [[0, 10, 1000], [1, 10, 1], [0, 11, 0]]);
});
