// Damaged DPMI traces: one CaptureProblem naming file, packet number and byte offset; the
// records before the damage are delivered. Plus a fast-check round trip of random traces
// (versions, byte orders, locations, picosecond times, any chunking) through the test writer.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { DPMI_HEADER_07, DPMI_RECORD_HEADER } from '../../src/capture/dpmi';
import { dpmiFileHeader, dpmiRecord, encodeDpmi, type DpmiFrame, type DpmiTraceOptions } from '../../src/capture/dpmi-writer';
import { readCapture } from '../../src/capture/reader';
import { collector, readSplit } from './collect';

const frames: DpmiFrame[] = Array.from({ length: 5 }, (_, i) => ({
  sec: 1_795_389_892 + i, ps: 437_462_011_123 + i, data: Buffer.alloc(60 + i, i + 1), mampid: 'mp', nic: 'd0',
}));
const comment = 'a comment';
const good = encodeDpmi(frames, { comment });
const headerLength = DPMI_HEADER_07 + comment.length;
/** Offset of record i's capture header. */
const recordAt = (i: number) => headerLength + frames.slice(0, i).reduce((s, f) => s + DPMI_RECORD_HEADER + f.data.length, 0);

function oneProblem(bytes: Uint8Array) {
  for (const sizes of [[bytes.length || 1], [1], [13, 50]]) {
    const { summary, got } = readSplit(bytes, sizes);
    assert.equal(summary.problems.length, 1, summary.problems.map(String).join('\n'));
    const problem = summary.problems[0];
    assert.equal(problem.file, 'test');
    if (sizes[0] !== bytes.length) continue;
    return { summary, got, problem };
  }
  throw new Error('unreachable');
}

test('good trace: no problem, five packets', () => {
  const { summary, got } = readSplit(good);
  assert.deepEqual(summary.problems, []);
  assert.equal(got.packets.length, 5);
  assert.equal(got.packets[4].fileOffset, recordAt(4));
});

test('truncated file header', () => {
  const { summary, problem } = oneProblem(good.subarray(0, 100));
  assert.equal(summary.format, 'dpmi');
  assert.equal(problem.kind, 'truncated');
  assert.equal(problem.byteOffset, 0);
  assert.equal(problem.packet, 1);
  assert.match(problem.message, /^test: truncated: input ends inside the DPMI 0\.7 file header: 100 of 216 bytes present \(packet 1, byte offset 0\)$/);
  assert.equal(summary.incomplete, true);
});

test('comment size past the end of the input', () => {
  const header = dpmiFileHeader({ comment: 'x'.repeat(40) });
  const { summary, problem } = oneProblem(header.subarray(0, DPMI_HEADER_07 + 10));
  assert.equal(problem.kind, 'truncated');
  assert.match(problem.detail, /comment size 40 goes past the end of the input: comment at byte 216, only 10 bytes of it present/);
  assert.equal(summary.packets, 0);
});

test('caplen > len (as real MPs write with padding/FCS): the frame cut to its wire length, the first case named, the rest counted', () => {
  const bad = Buffer.from(good);
  bad.writeUInt32LE(20, recordAt(2) + 28); // wire length 20 < caplen 62
  const { summary, got, problem } = oneProblem(bad);
  assert.equal(problem.kind, 'corrupt');
  assert.equal(problem.packet, 3);
  assert.equal(problem.byteOffset, recordAt(2));
  assert.match(problem.detail, /captured length 62 exceeds wire length 20: the 42 bytes past the wire length \(padding or FCS\) are not passed on/);
  assert.equal(summary.incomplete, false);
  assert.equal(got.packets.length, 5);
  assert.deepEqual([got.packets[2].caplen, got.packets[2].wirelen], [20, 20]);
  assert.ok(got.packets[2].data.equals(Buffer.from(frames[2].data).subarray(0, 20)));

  bad.writeUInt32LE(0, recordAt(3) + 28); // and a zero wire length
  const twice = readSplit(bad);
  assert.deepEqual(twice.summary.problems.map((p) => [p.packet, p.byteOffset]), [[3, recordAt(2)], [5, bad.length]]);
  assert.match(twice.summary.problems[1].detail, /^2 records in all had a captured length above their wire length/);
  assert.deepEqual([twice.got.packets[3].caplen, twice.got.packets[3].wirelen], [63, 63]);
});

test('caplen past the end of the input', () => {
  const cut = good.subarray(0, recordAt(3) + DPMI_RECORD_HEADER + 10);
  const { summary, got, problem } = oneProblem(cut);
  assert.equal(problem.kind, 'truncated');
  assert.equal(problem.packet, 4);
  assert.equal(problem.byteOffset, recordAt(3));
  assert.match(problem.detail, /10 \+ 36|46 of its 99 bytes present/);
  assert.equal(got.packets.length, 3);
  assert.equal(summary.incomplete, true);
});

test('zero-length record (zero-filled tail)', () => {
  const zeroed = Buffer.concat([good.subarray(0, recordAt(2)), Buffer.alloc(200)]);
  const { summary, got, problem } = oneProblem(zeroed);
  assert.equal(problem.kind, 'corrupt');
  assert.equal(problem.packet, 3);
  assert.equal(problem.byteOffset, recordAt(2));
  assert.match(problem.detail, /captured length 0/);
  assert.equal(got.packets.length, 2);
  assert.equal(summary.incomplete, true);
});

test('absurd caplen stops reading there', () => {
  const bad = Buffer.from(good);
  bad.writeUInt32LE(0x7fffffff, recordAt(1) + 32);
  const { got, problem } = oneProblem(bad);
  assert.equal(problem.kind, 'corrupt');
  assert.equal(problem.packet, 2);
  assert.equal(problem.byteOffset, recordAt(1));
  assert.equal(got.packets.length, 1);
});

test('0.7 magic with header_offset below 216', () => {
  const bad = Buffer.from(good);
  bad.writeUInt16LE(100, 12);
  const { problem } = oneProblem(bad);
  assert.equal(problem.kind, 'corrupt');
  assert.equal(problem.byteOffset, 12);
});

test('a damaged file on disk: the message names the file, packet and byte offset', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-dpmi-'));
  try {
    const file = path.join(dir, 'cut.cap');
    fs.writeFileSync(file, good.subarray(0, recordAt(4) + 5));
    const got = collector();
    const summary = await readCapture(file, got);
    assert.equal(got.packets.length, 4);
    assert.equal(summary.problems.length, 1);
    assert.equal(summary.problems[0].message, `${file}: truncated: input ends inside a record header: 5 of 36 bytes present (packet 5, byte offset ${recordAt(4)})`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const frameArb: fc.Arbitrary<DpmiFrame> = fc.record({
  sec: fc.integer({ min: 0, max: 0xffffffff }),
  ps: fc.integer({ min: 0, max: 999_999_999_999 }),
  data: fc.uint8Array({ minLength: 1, maxLength: 300 }),
  extra: fc.nat(100),
  nic: fc.constantFrom('eth0', 'eth1', 'CONV', 'd00'),
  mampid: fc.constantFrom('mpA', 'mpB', 'mirror12'), // 8 bytes: no NUL terminator in the field
}).map(({ extra, ...f }) => ({ ...f, wirelen: f.data.length + extra }));

const optionsArb: fc.Arbitrary<DpmiTraceOptions> = fc.record({
  version: fc.constantFrom<'0.5' | '0.6' | '0.7'>('0.5', '0.6', '0.7'),
  bigEndian: fc.boolean(),
  comment: fc.string({ maxLength: 50 }).filter((s) => !s.includes('\0')),
  mpid: fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !s.includes('\0') && /^[\x20-\x7e]*$/.test(s)),
});

test('property: random traces read back exactly (frames, ps timestamps, lengths, locations), any chunking', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 30 }), optionsArb, fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 5 }), (list, options, sizes) => {
      const bytes = Buffer.concat([dpmiFileHeader(options), ...list.map((f) => dpmiRecord(f, options))]);
      const { summary, got } = readSplit(bytes, sizes);
      assert.deepEqual(summary.problems, []);
      assert.equal(summary.format, 'dpmi');
      assert.equal(summary.comment, options.comment || undefined);
      assert.equal(got.packets.length, list.length);
      got.packets.forEach((p, i) => {
        const f = list[i];
        assert.deepEqual(
          [p.sec, p.ps, p.caplen, p.wirelen, summary.interfaces[p.interfaceId].name, p.index],
          [f.sec, f.ps, f.data.length, f.wirelen, `${f.mampid}:${f.nic}`, i + 1],
        );
        assert.ok(p.data.equals(Buffer.from(f.data)));
      });
    }),
    { numRuns: 300 },
  );
});
