// Damaged input: one CaptureProblem with file, packet number and byte offset; the packets before
// the damage are delivered; `incomplete` when reading had to stop; only "cannot open" rejects.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import { readCapture } from '../../src/capture/reader';
import { encodePcap, encodePcapng } from '../../src/capture/writer';
import { collector, readSplit } from './collect';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-bad-input-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const frames = Array.from({ length: 5 }, (_, i) => ({ sec: 1_700_000_000 + i, ps: i * 1_000_000, data: Buffer.alloc(60 + i, i + 1) }));
const pcap = encodePcap(frames, { nanosecond: true });
/** Offset of record i's header in `pcap`. */
const recordAt = (i: number) => 24 + frames.slice(0, i).reduce((sum, f) => sum + 16 + f.data.length, 0);

function one(bytes: Uint8Array) {
  const { summary, got } = readSplit(bytes, [bytes.length || 1]);
  assert.equal(summary.problems.length, 1, summary.problems.map((p) => p.message).join('\n'));
  assert.deepEqual(got.problems, summary.problems);
  return { summary, got, problem: summary.problems[0] };
}

test('empty input', () => {
  const { summary, problem } = one(new Uint8Array(0));
  assert.equal(problem.kind, 'unreadable');
  assert.equal(problem.byteOffset, 0);
  assert.equal(summary.incomplete, true);
  assert.equal(summary.format, 'unknown');
});

test('garbage / wrong magic', () => {
  const { summary, problem } = one(Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n'));
  assert.equal(problem.kind, 'unreadable');
  assert.match(problem.message, /unknown magic 0x47455420/);
  assert.equal(summary.packets, 0);
});

test('file shorter than the pcap header', () => {
  const { summary, problem } = one(pcap.subarray(0, 10));
  assert.equal(problem.kind, 'truncated');
  assert.equal(problem.byteOffset, 0);
  assert.equal(summary.incomplete, true);
});

test('truncated inside a record header and inside a frame: earlier packets kept, place named', () => {
  for (const cut of [recordAt(3) + 5, recordAt(3) + 16 + 10]) {
    const { summary, got, problem } = one(pcap.subarray(0, cut));
    assert.equal(problem.kind, 'truncated');
    assert.equal(problem.packet, 4);
    assert.equal(problem.byteOffset, recordAt(3));
    assert.equal(problem.file, 'test');
    assert.match(problem.message, /^test: truncated: .*\(packet 4, byte offset \d+\)$/);
    assert.equal(got.packets.length, 3);
    assert.equal(summary.incomplete, true);
  }
});

test('zero and absurd caplen stop reading with a corrupt problem', () => {
  for (const caplen of [0, 300_000, 0xffffffff]) {
    const bad = Buffer.from(pcap);
    bad.writeUInt32LE(caplen, recordAt(2) + 8);
    const { got, problem, summary } = one(bad);
    assert.equal(problem.kind, 'corrupt');
    assert.equal(problem.packet, 3);
    assert.equal(problem.byteOffset, recordAt(2));
    assert.equal(got.packets.length, 2);
    assert.equal(summary.incomplete, true);
  }
});

test('caplen far above a small snaplen is corrupt', () => {
  const small = encodePcap(frames, { snaplen: 64 });
  const bad = Buffer.from(small);
  bad.writeUInt32LE(5000, recordAt(1) + 8);
  assert.equal(one(bad).problem.kind, 'corrupt');
});

test('unknown link type: reported once, packets still delivered', () => {
  const { got, problem, summary } = one(encodePcap(frames, { linkType: 147 }));
  assert.equal(problem.kind, 'unsupported');
  assert.match(problem.detail, /link type 147/);
  assert.equal(got.packets.length, 5);
  assert.equal(summary.incomplete, false);
});

const ng = encodePcapng([{ interfaces: [{ linkType: 1, tsresol: 9 }], packets: frames.map((f) => ({ ...f, interface: 0 })) }]);
/** Offsets of the blocks of `ng`. */
const blocks: number[] = [];
for (let at = 0; at < ng.length; at += ng.readUInt32LE(at + 4)) blocks.push(at);

test('pcapng block with a length that is not a multiple of 4, too small, or absurd', () => {
  for (const length of [101, 8, 0x7ffffff0]) {
    const bad = Buffer.from(ng);
    bad.writeUInt32LE(length, blocks[4] + 4); // the third EPB
    const { got, problem, summary } = one(bad);
    assert.equal(problem.kind, 'corrupt');
    assert.equal(problem.byteOffset, blocks[4]);
    assert.equal(problem.packet, 3);
    assert.equal(got.packets.length, 2);
    assert.equal(summary.incomplete, true);
  }
});

test('pcapng block whose trailing length differs from the leading one', () => {
  const bad = Buffer.from(ng);
  const len = bad.readUInt32LE(blocks[3] + 4);
  bad.writeUInt32LE(len + 4, blocks[3] + len - 4);
  const { got, problem } = one(bad);
  assert.equal(problem.kind, 'corrupt');
  assert.match(problem.detail, /trailing length/);
  assert.equal(got.packets.length, 1);
});

test('pcapng: truncated file, bad byte-order magic, packet for an undefined interface', () => {
  const truncated = one(ng.subarray(0, blocks[5] + 20));
  assert.equal(truncated.problem.kind, 'truncated');
  assert.equal(truncated.problem.byteOffset, blocks[5]);
  assert.equal(truncated.got.packets.length, 3);

  const badMagic = Buffer.from(ng);
  badMagic.writeUInt32LE(0x12345678, 8);
  assert.equal(one(badMagic).problem.kind, 'corrupt');

  const badInterface = Buffer.from(ng);
  badInterface.writeUInt32LE(7, blocks[2] + 8);
  const r = one(badInterface);
  assert.equal(r.problem.kind, 'corrupt');
  assert.equal(r.got.packets.length, 4); // that block is skipped, the framing is intact
  assert.equal(r.summary.incomplete, false);
});

test('truncated and corrupt gzip: packets before the damage are kept', async () => {
  const big = encodePcap(Array.from({ length: 3000 }, (_, i) => ({ sec: i, ps: 0, data: Buffer.alloc(1000, i & 0xff) })));
  const gz = zlib.gzipSync(big);
  const cut = path.join(tmp, 'cut.pcap.gz');
  fs.writeFileSync(cut, gz.subarray(0, Math.floor(gz.length / 2)));
  const got = collector();
  const summary = await readCapture(cut, got);
  assert.equal(summary.incomplete, true);
  assert.ok(summary.problems.length >= 1);
  assert.ok(summary.problems.some((p) => p.kind === 'truncated'), summary.problems.map((p) => p.message).join('\n'));
  assert.ok(got.packets.length > 0 && got.packets.length < 3000);

  const corrupt = Buffer.from(gz);
  for (let i = 100; i < 140; i++) corrupt[i] ^= 0x5a;
  const bad = path.join(tmp, 'corrupt.pcap.gz');
  fs.writeFileSync(bad, corrupt);
  const s2 = await readCapture(bad, collector());
  assert.equal(s2.incomplete, true);
  assert.ok(s2.problems.length >= 1);
});

test('cannot open: rejects (missing file, directory)', async () => {
  await assert.rejects(readCapture(path.join(tmp, 'does-not-exist.pcap'), collector()), /ENOENT/);
  await assert.rejects(readCapture(tmp, collector()), /EISDIR/);
});

test('a stream that fails midway: packets before the failure kept, the failure reported', async () => {
  const { Readable } = await import('node:stream');
  const { readCaptureStream } = await import('../../src/capture/reader');
  async function* failing() {
    yield pcap.subarray(0, recordAt(2) + 7);
    throw new Error('EIO: device went away');
  }
  const got = collector();
  const summary = await readCaptureStream('pipe', Readable.from(failing()), got);
  assert.equal(got.packets.length, 2);
  assert.equal(summary.incomplete, true);
  assert.equal(summary.problems.length, 1);
  assert.equal(summary.problems[0].kind, 'unreadable');
  assert.match(summary.problems[0].message, /read failed: EIO: device went away/);
});

test('a damaged stream is abandoned at once (the rest is not read)', async () => {
  const { Readable } = await import('node:stream');
  const { readCaptureStream } = await import('../../src/capture/reader');
  let produced = 0;
  async function* endless() {
    for (;;) { produced++; yield Buffer.alloc(65536, 0x41); }
  }
  const summary = await readCaptureStream('garbage', Readable.from(endless()), collector());
  assert.equal(summary.problems[0].kind, 'unreadable');
  assert.ok(produced < 10, `read ${produced} chunks of garbage`);
});
