// Property tests: random packet lists written as pcap / pcapng by the test's writer, cut into
// random chunks, read back identically (timestamps to the file's resolution).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodePcap, encodePcapng, pcapngUnits, type PcapngInterfaceSpec, type PcapngSectionSpec } from '../../src/capture/writer';
import { expectedTime, readSplit } from './collect';

const frameArb = fc.record({
  sec: fc.integer({ min: 2000, max: 0xffffffff }),
  ps: fc.integer({ min: 0, max: 999_999_999_999 }),
  data: fc.uint8Array({ minLength: 1, maxLength: 200 }),
  extra: fc.nat({ max: 3000 }), // wirelen − caplen
});
const splitArb = fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 });

test('pcap: random frames, µs/ns, either byte order, any chunking: read back exactly', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 60 }), fc.boolean(), fc.boolean(), splitArb, (frames, nanosecond, bigEndian, split) => {
      const written = frames.map((f) => ({ sec: f.sec, ps: f.ps, data: f.data, wirelen: f.data.length + f.extra }));
      const bytes = encodePcap(written, { nanosecond, bigEndian });
      const { summary, got } = readSplit(bytes, split);
      assert.deepEqual(summary.problems, []);
      assert.equal(summary.bytesRead, bytes.length);
      assert.equal(got.packets.length, frames.length);
      const unit = nanosecond ? 1_000 : 1_000_000;
      got.packets.forEach((p, i) => {
        const f = written[i];
        assert.equal(p.index, i + 1);
        assert.equal(p.sec, f.sec);
        assert.equal(p.ps, f.ps - (f.ps % unit));
        assert.equal(p.caplen, f.data.length);
        assert.equal(p.wirelen, f.wirelen);
        assert.deepEqual(new Uint8Array(p.data), f.data);
      });
    }),
    { numRuns: 300 },
  );
});

const interfaceArb: fc.Arbitrary<PcapngInterfaceSpec> = fc.record({
  linkType: fc.constantFrom(1, 101, 113, 228, 276),
  snaplen: fc.constant(0),
  tsresol: fc.constantFrom(0, 3, 6, 9, 0x80 | 10, 0x80 | 20, 0x80 | 24, 0x80 | 30),
  tsoffset: fc.integer({ min: -1000, max: 1000 }),
});

const sectionArb = fc
  .record({
    bigEndian: fc.boolean(),
    interfaces: fc.array(interfaceArb, { minLength: 1, maxLength: 3 }),
    frames: fc.array(fc.record({ frame: frameArb, pick: fc.nat(), block: fc.constantFrom('epb', 'epb', 'opb', 'spb') }), { maxLength: 25 }),
    otherBlocks: fc.array(fc.record({ type: fc.constantFrom(4, 5, 0xbad, 0x40000bad, 0x80000001), body: fc.uint8Array({ maxLength: 40 }) }), { maxLength: 2 }),
    comment: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
  })
  .map(({ bigEndian, interfaces, frames, otherBlocks, comment }): PcapngSectionSpec => ({
    bigEndian,
    interfaces,
    otherBlocks,
    comment,
    packets: frames.map(({ frame, pick, block }) => {
      const spb = block === 'spb';
      // An SPB belongs to interface 0 and has no room for a caplen: whole frames only, and the
      // data padded to 4 bytes so that the implied length is exact.
      const data = spb ? frame.data.subarray(0, frame.data.length & ~3 || 4) : frame.data;
      const padded = data.length >= 4 ? data : new Uint8Array(4);
      return {
        interface: spb ? 0 : pick % interfaces.length,
        block: block as 'epb' | 'opb' | 'spb',
        sec: frame.sec,
        ps: frame.ps,
        data: spb ? padded : data,
        wirelen: spb ? padded.length : data.length + frame.extra,
      };
    }),
  }));

test('pcapng: random sections, interfaces, resolutions, offsets, block kinds, any chunking', () => {
  fc.assert(
    fc.property(fc.array(sectionArb, { minLength: 1, maxLength: 3 }), splitArb, (sections, split) => {
      const bytes = encodePcapng(sections);
      const { summary, got } = readSplit(bytes, split);
      assert.deepEqual(summary.problems, []);
      assert.equal(summary.format, 'pcapng');
      assert.equal(summary.interfaces.length, sections.reduce((n, s) => n + s.interfaces.length, 0));
      assert.deepEqual(summary.interfaces.map((i) => i.id), summary.interfaces.map((_, i) => i));
      let i = 0;
      let firstId = 0;
      let last = { sec: 0, ps: 0 };
      for (const section of sections) {
        for (const packet of section.packets) {
          const p = got.packets[i++];
          const spec = section.interfaces[packet.interface];
          assert.equal(p.interfaceId, firstId + packet.interface);
          assert.equal(p.linkType, spec.linkType);
          assert.equal(p.wirelen, packet.wirelen);
          assert.deepEqual(new Uint8Array(p.data), new Uint8Array(packet.data));
          const want = packet.block === 'spb' ? last : expectedTime(spec, pcapngUnits(spec, packet.sec, packet.ps));
          assert.deepEqual({ sec: p.sec, ps: p.ps }, want);
          last = want;
        }
        firstId += section.interfaces.length;
      }
      assert.equal(got.packets.length, i);
      const comments = sections.flatMap((s) => (s.comment === undefined ? [] : [s.comment]));
      assert.equal(summary.comment, comments.length > 0 ? comments.join('\n') : undefined);
    }),
    { numRuns: 300 },
  );
});
