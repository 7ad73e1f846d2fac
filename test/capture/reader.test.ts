// Capture readers on the real captures: packet counts and bytes against independent oracles
// (libcap_utils capinfo, tshark's libvirt TSV), and the same frames through every format variant
// (pcap µs/ns, both byte orders, pcapng, gzip, files, streams, any chunking).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import { readCapture, readCaptureStream } from '../../src/capture/reader';
import { encodePcap, encodePcapng, type FrameToWrite } from '../../src/capture/writer';
import { capturesDir, fixture, sharedCapturesDir } from '../helpers/paths';
import { collector, framesOf, gunzipFile, readSplit } from './collect';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-capture-test-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** capinfo (libcap_utils, run on the DPMI twin of the same pcap) states packets and bytes. */
function capinfoTotals(name: string): { packets: number; bytes: number } {
  const text = fs.readFileSync(path.join(capturesDir, `${name}.capinfo.txt`), 'utf8');
  return {
    packets: Number(/^\s*packets: (\d+)/m.exec(text)![1]),
    bytes: Number(/^\s*bytes: .*\((\d+) bytes\)/m.exec(text)![1]),
  };
}

for (const name of ['a-p2p-src2dst', 'f-fail-nobridge']) {
  test(`${name}.pcap.gz: packet count and captured bytes equal the capinfo oracle`, async () => {
    let packets = 0;
    let bytes = 0;
    let lastIndex = 0;
    const summary = await readCapture(path.join(capturesDir, `${name}.pcap.gz`), {
      packet(r) {
        packets++;
        bytes += r.caplen;
        assert.equal(r.index, lastIndex + 1);
        lastIndex = r.index;
      },
    });
    const oracle = capinfoTotals(name);
    assert.equal(packets, oracle.packets);
    assert.equal(bytes, oracle.bytes);
    assert.equal(summary.packets, oracle.packets);
    assert.equal(summary.format, 'pcap');
    assert.equal(summary.incomplete, false);
    assert.deepEqual(summary.problems, []);
    assert.equal(summary.interfaces.length, 1);
    assert.equal(summary.interfaces[0].linkType, 1);
    assert.equal(summary.interfaces[0].tsDigits, 9);
    assert.equal(summary.bytesRead, gunzipFile(path.join(capturesDir, `${name}.pcap.gz`)).length);
  });
}

// tcpdump's own "N packets captured" line, saved when each capture was made.
const tcpdumpLogs = [capturesDir, sharedCapturesDir].flatMap((dir) =>
  fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.tcpdump.txt')).map((f) => path.join(dir, f)) : []);
const seen = new Set<string>();
for (const log of tcpdumpLogs) {
  const name = path.basename(log, '.tcpdump.txt');
  const capture = log.replace(/\.tcpdump\.txt$/, '.pcap.gz');
  if (seen.has(name) || !fs.existsSync(capture)) continue;
  seen.add(name);
  test(`${name}: packet count equals tcpdump's "packets captured"`, async () => {
    const captured = Number(/^(\d+) packets captured/m.exec(fs.readFileSync(log, 'utf8'))![1]);
    const summary = await readCapture(capture, { packet() {} });
    assert.deepEqual(summary.problems, []);
    assert.equal(summary.packets, captured);
  });
}

test('a-p2p-src2dst: frame numbers, ns timestamps and addresses match tshark (libvirt TSV)', async () => {
  const rows = fs.readFileSync(fixture('captures', 'a-p2p-src2dst.tshark-libvirt.tsv'), 'utf8').trim().split('\n').slice(1)
    .map((line) => line.split('\t'));
  const wanted = new Map(rows.map((r) => [Number(r[0]), { epoch: r[1], src: r[2], dst: r[4] }]));
  let checked = 0;
  await readCapture(path.join(capturesDir, 'a-p2p-src2dst.pcap.gz'), {
    packet(r) {
      const row = wanted.get(r.index);
      if (!row) return;
      assert.equal(`${r.sec}.${String(r.ps).padStart(12, '0').slice(0, 9)}`, row.epoch);
      assert.equal(r.ps % 1000, 0); // ns file: no sub-ns digits invented
      const ip = (at: number) => Array.from(r.buf.subarray(r.offset + at, r.offset + at + 4)).join('.');
      assert.equal(ip(14 + 12), row.src);
      assert.equal(ip(14 + 16), row.dst);
      checked++;
    },
  });
  assert.equal(checked, new Set(rows.map((r) => r[0])).size);
  assert.ok(checked > 10);
});

// Frames of two real captures, written back in every variant by the test's own writer.
const realBytes = gunzipFile(path.join(capturesDir, 'a-p2p-src2dst.pcap.gz'), 6_000_000);
const realFrames = framesOf(realBytes).slice(0, 4000).concat(framesOf(gunzipFile(path.join(capturesDir, 'f-fail-nobridge.pcap.gz'))));

function micro(frames: FrameToWrite[]): FrameToWrite[] {
  return frames.map((f) => ({ ...f, ps: f.ps - (f.ps % 1_000_000) }));
}

const variants: { name: string; bytes: Buffer; frames: FrameToWrite[] }[] = [
  { name: 'pcap ns little-endian', bytes: encodePcap(realFrames, { nanosecond: true }), frames: realFrames },
  { name: 'pcap ns big-endian', bytes: encodePcap(realFrames, { nanosecond: true, bigEndian: true }), frames: realFrames },
  { name: 'pcap µs little-endian', bytes: encodePcap(realFrames), frames: micro(realFrames) },
  { name: 'pcap µs big-endian', bytes: encodePcap(realFrames, { bigEndian: true }), frames: micro(realFrames) },
  {
    name: 'pcapng ns little-endian',
    bytes: encodePcapng([{ interfaces: [{ linkType: 1, snaplen: 262144, tsresol: 9 }], packets: realFrames.map((f) => ({ ...f, interface: 0 })) }]),
    frames: realFrames,
  },
  {
    name: 'pcapng µs big-endian (default if_tsresol)',
    bytes: encodePcapng([{ bigEndian: true, interfaces: [{ linkType: 1 }], packets: realFrames.map((f) => ({ ...f, interface: 0 })) }]),
    frames: micro(realFrames),
  },
];

function assertSameFrames(actual: ReturnType<typeof collector>, expected: FrameToWrite[], label: string): void {
  assert.equal(actual.packets.length, expected.length, `${label}: packet count`);
  for (let i = 0; i < expected.length; i++) {
    const got = actual.packets[i];
    const want = expected[i];
    if (got.sec !== want.sec || got.ps !== want.ps || got.wirelen !== (want.wirelen ?? want.data.length) || !got.data.equals(Buffer.from(want.data)) || got.index !== i + 1) {
      assert.fail(`${label}: packet ${i + 1} differs: got ${JSON.stringify({ ...got, data: got.data.length })}, want ${JSON.stringify({ ...want, data: want.data.length })}`);
    }
  }
}

for (const variant of variants) {
  test(`same real frames as ${variant.name}: file, gzip file, stream and odd chunk sizes agree`, async () => {
    const file = path.join(tmp, `${variant.name.replace(/\W+/g, '-')}.cap`);
    fs.writeFileSync(file, variant.bytes);
    fs.writeFileSync(`${file}.gz`, zlib.gzipSync(variant.bytes));

    const fromFile = collector();
    const summary = await readCapture(file, fromFile);
    assert.equal(summary.format, variant.name.startsWith('pcapng') ? 'pcapng' : 'pcap');
    assert.deepEqual(summary.problems, []);
    assertSameFrames(fromFile, variant.frames, `${variant.name} file`);

    const fromGzip = collector();
    const gzSummary = await readCapture(`${file}.gz`, fromGzip);
    assert.equal(gzSummary.bytesRead, variant.bytes.length);
    assertSameFrames(fromGzip, variant.frames, `${variant.name} gzip`);

    const fromStream = collector();
    const chunks = [];
    for (let at = 0, i = 0; at < variant.bytes.length; i++) {
      const size = [1, 7, 16, 1000, 65536, 3][i % 6];
      chunks.push(variant.bytes.subarray(at, at + size));
      at += size;
    }
    await readCaptureStream('stream', Readable.from(chunks), fromStream);
    assertSameFrames(fromStream, variant.frames, `${variant.name} stream`);

    const split = readSplit(variant.bytes, [13, 1513, 2, 1530]);
    assertSameFrames(split.got, variant.frames, `${variant.name} in-memory split`);
  });
}

test('stdin ("-") is read like a file', { skip: process.platform === 'win32' ? 'needs sh' : undefined }, async () => {
  const { spawnSync } = await import('node:child_process');
  const file = path.join(tmp, 'stdin.pcap.gz');
  fs.writeFileSync(file, zlib.gzipSync(variants[0].bytes));
  const script = `require(${JSON.stringify(require.resolve('../../src/capture/reader'))}).readCapture('-', { packet() {} })` +
    '.then((s) => process.stdout.write(JSON.stringify({ packets: s.packets, problems: s.problems.length, format: s.format })))';
  const child = spawnSync(process.execPath, ['-e', script], { input: fs.readFileSync(file) });
  assert.equal(child.status, 0, child.stderr.toString());
  assert.deepEqual(JSON.parse(child.stdout.toString()), { packets: realFrames.length, problems: 0, format: 'pcap' });
});

test('gzip detection uses the magic, not the name; file names never decide the format', async () => {
  const file = path.join(tmp, 'looks-like.pcapng');
  fs.writeFileSync(file, zlib.gzipSync(variants[2].bytes)); // a gzipped µs pcap named .pcapng
  const got = collector();
  const summary = await readCapture(file, got);
  assert.equal(summary.format, 'pcap');
  assert.equal(summary.interfaces[0].tsDigits, 6);
  assertSameFrames(got, variants[2].frames, 'misnamed gzip');
});
