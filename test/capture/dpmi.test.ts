// DPMI (caputils) reader on real traces made by libcap_utils' pcap2cap: the same frames as their
// pcap twins (timestamps to the microsecond, as pcap2cap got them from libpcap), and the totals
// of the library's own `capinfo` summary. Header variants the real tools no longer write (0.5,
// 0.6, big-endian, grown 0.7 header) come from our independent test writer.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { parseDpmiFileHeader } from '../../src/capture/dpmi';
import { encodeDpmi, type DpmiFrame, type DpmiTraceOptions } from '../../src/capture/dpmi-writer';
import { readCapture, readCaptureStream } from '../../src/capture/reader';
import type { PacketRecord } from '../../src/capture/types';
import { capturesDir, fixture } from '../helpers/paths';
import { collector, framesOf, gunzipFile, readSplit } from './collect';
import * as path from 'node:path';

/** Per-packet fingerprint of a capture, µs timestamps (what pcap2cap kept) + sha1 of the bytes. */
interface Fingerprint {
  rows: string[];
  packets: number;
  bytes: number; // sum of wire lengths (capinfo's "bytes")
  first?: { sec: number; ps: number };
  last?: { sec: number; ps: number };
  interfaces: string[];
  comment?: string;
  format: string;
  problems: number;
}

async function fingerprint(file: string): Promise<Fingerprint> {
  const rows: string[] = [];
  let bytes = 0;
  let first: { sec: number; ps: number } | undefined;
  let last: { sec: number; ps: number } | undefined;
  const summary = await readCapture(file, {
    packet(r: PacketRecord) {
      const digest = createHash('sha1').update(r.buf.subarray(r.offset, r.offset + r.caplen)).digest('hex');
      rows.push(`${r.index} ${r.sec}.${String(Math.floor(r.ps / 1e6)).padStart(6, '0')} ${r.caplen} ${r.wirelen} ${digest}`);
      bytes += r.wirelen;
      first ??= { sec: r.sec, ps: r.ps };
      last = { sec: r.sec, ps: r.ps };
    },
  });
  return {
    rows, packets: summary.packets, bytes, first, last, format: summary.format, comment: summary.comment,
    interfaces: summary.interfaces.map((i) => `${i.id} ${i.name} digits=${i.tsDigits}`), problems: summary.problems.length,
  };
}

/** The figures of a libcap_utils `capinfo` report. */
function parseCapinfo(text: string) {
  const field = (name: string) => new RegExp(`^\\s*${name}: (.*)$`, 'm').exec(text)?.[1];
  const locations = [...text.matchAll(/^\s*location:(\S+) ([\d.]+) seconds, (\d+) packets, (\d+) bytes/gm)].map((m) => ({
    name: m[1], seconds: Number(m[2]), packets: Number(m[3]), bytes: Number(m[4]),
  }));
  return {
    ci: field('CI'),
    mpid: field('mpid'),
    comment: field('comment'),
    markers: field('markers'),
    captured: /^\s*captured: (\S+ \S+) to (\S+ \S+)$/m.exec(text)?.slice(1, 3),
    durationSec: Number(/\(([\d.]+) seconds\)/.exec(field('duration') ?? '')?.[1]),
    packets: Number(field('packets')),
    bytes: Number(/\((\d+) bytes\)/.exec(field('bytes') ?? '')?.[1]),
    locations,
  };
}

/** capinfo prints local time; the traces were summarised with TZ=UTC. */
function utcSeconds(sec: number): string {
  return new Date(sec * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

for (const name of ['a-p2p-src2dst', 'f-fail-nobridge']) {
  test(`${name}.cap.gz: same frames as ${name}.pcap.gz, timestamps equal to the microsecond`, async () => {
    const [cap, pcap] = await Promise.all([
      fingerprint(path.join(capturesDir, `${name}.cap.gz`)),
      fingerprint(path.join(capturesDir, `${name}.pcap.gz`)),
    ]);
    assert.equal(cap.format, 'dpmi');
    assert.equal(pcap.format, 'pcap');
    assert.equal(cap.problems, 0);
    assert.equal(cap.packets, pcap.packets);
    for (let i = 0; i < cap.rows.length; i++) assert.equal(cap.rows[i], pcap.rows[i], `packet ${i + 1}`);
    assert.deepEqual(cap.interfaces, ['0 mirror:CONV digits=12']);
  });

  test(`${name}.cap.gz: packets, bytes, duration, locations and comment equal its capinfo summary`, async () => {
    const info = parseCapinfo(fs.readFileSync(path.join(capturesDir, `${name}.capinfo.txt`), 'utf8'));
    const cap = await fingerprint(path.join(capturesDir, `${name}.cap.gz`));
    assert.ok(info.packets > 0 && info.bytes > 0, 'capinfo parsed');
    assert.equal(cap.packets, info.packets);
    assert.equal(cap.bytes, info.bytes);
    const duration = (cap.last!.sec - cap.first!.sec) + (cap.last!.ps - cap.first!.ps) / 1e12;
    assert.equal(duration.toFixed(1), info.durationSec.toFixed(1));
    assert.deepEqual(info.captured, [utcSeconds(cap.first!.sec), utcSeconds(cap.last!.sec)]);
    assert.equal(cap.comment, info.comment);
    assert.deepEqual(info.locations.map((l) => `${l.name} ${l.packets} ${l.bytes}`), [`${info.mpid}:${info.ci} ${info.packets} ${info.bytes}`]);
    assert.deepEqual(cap.interfaces, [`0 ${info.locations[0].name} digits=12`]);
  });
}

test('merged.cap (real capmerge of two MPs): both locations kept apart, counts as capinfo says', async () => {
  const info = parseCapinfo(fs.readFileSync(fixture('dpmi', 'merged.capinfo.txt'), 'utf8'));
  const got = collector();
  const summary = await readCapture(fixture('dpmi', 'merged.cap'), got);
  assert.equal(summary.problems.length, 0);
  assert.equal(summary.comment, info.comment);
  assert.equal(summary.packets, info.packets);
  const perLocation = summary.interfaces.map((iface) => {
    const mine = got.packets.filter((p) => p.interfaceId === iface.id);
    return `${iface.name} ${mine.length} ${mine.reduce((s, p) => s + p.wirelen, 0)}`;
  });
  assert.deepEqual(perLocation.sort(), info.locations.map((l) => `${l.name} ${l.packets} ${l.bytes}`).sort());
  assert.equal(summary.interfaces.length, 2);
  // Each frame of one MP has its twin at the other: same bytes, different location.
  const byBytes = (id: number) => got.packets.filter((p) => p.interfaceId === id).map((p) => p.data.toString('hex')).sort();
  assert.deepEqual(byBytes(0), byBytes(1));
});

test('markers.cap equals its pcap twin markers.pcap frame by frame', async () => {
  const [cap, pcap] = await Promise.all([fingerprint(fixture('dpmi', 'markers.cap')), fingerprint(fixture('dpmi', 'markers.pcap'))]);
  assert.equal(cap.packets, 100);
  assert.deepEqual(cap.rows, pcap.rows);
});

test('gzip from stdin-like streams, any chunking', async () => {
  const gz = fs.readFileSync(path.join(capturesDir, 'f-fail-nobridge.cap.gz'));
  const pieces = [gz.subarray(0, 1), gz.subarray(1, 1000), gz.subarray(1000)];
  const got = collector();
  const summary = await readCaptureStream('-', Readable.from(pieces), got);
  assert.equal(summary.format, 'dpmi');
  const plain = gunzipFile(path.join(capturesDir, 'f-fail-nobridge.cap.gz'));
  const split = readSplit(plain, [1, 35, 36, 37, 215, 216, 217, 4096]);
  assert.equal(split.summary.packets, summary.packets);
  assert.deepEqual(split.got.packets, got.packets);
});

/** Real frames (first 40 of a real capture) with picosecond times and two locations. */
function sampleFrames(): DpmiFrame[] {
  const pcap = gunzipFile(path.join(capturesDir, 'f-fail-nobridge.pcap.gz'), 200_000);
  return framesOf(pcap, 40).map((f, i) => ({
    ...f,
    ps: f.ps + 123_457 + i, // beyond the ns: picoseconds must survive
    nic: i % 3 === 0 ? 'eth1' : 'eth0',
    mampid: i % 2 === 0 ? 'mp-left' : 'mp-right',
  }));
}

const variants: [string, DpmiTraceOptions][] = [
  ['0.7 little-endian', { comment: 'seventh', mpid: 'mp-left' }],
  ['0.7 big-endian', { bigEndian: true, comment: 'big', mpid: 'be' }],
  ['0.7 with a grown header (header_offset 300)', { headerOffset: 300, comment: 'grown' }],
  ['0.6 little-endian', { version: '0.6', comment: 'sixth' }],
  ['0.6 big-endian', { version: '0.6', bigEndian: true, comment: 'sixth big' }],
  ['0.5 little-endian', { version: '0.5', comment: 'fifth' }],
  ['0.5 big-endian', { version: '0.5', bigEndian: true, comment: '' }],
];

for (const [label, options] of variants) {
  test(`header variant ${label}: frames, picoseconds, locations, comment`, () => {
    const frames = sampleFrames();
    const bytes = encodeDpmi(frames, options);
    const header = parseDpmiFileHeader(bytes)!;
    assert.equal(`${header.version.major}.${header.version.minor}`, options.version ?? '0.7');
    assert.equal(header.littleEndian, !options.bigEndian);
    for (const sizes of [[bytes.length], [1], [7, 36, 300]]) {
      const { summary, got } = readSplit(bytes, sizes);
      assert.equal(summary.format, 'dpmi');
      assert.deepEqual(summary.problems, []);
      assert.equal(summary.comment, options.comment || undefined);
      assert.deepEqual(summary.interfaces.map((i) => i.name), ['mp-left:eth1', 'mp-right:eth0', 'mp-left:eth0', 'mp-right:eth1']);
      assert.equal(got.packets.length, frames.length);
      got.packets.forEach((p, i) => {
        const f = frames[i];
        const name = summary.interfaces[p.interfaceId].name;
        assert.deepEqual([p.sec, p.ps, p.wirelen, name], [f.sec, f.ps, f.wirelen, `${f.mampid}:${f.nic}`]);
        assert.ok(p.data.equals(Buffer.from(f.data)));
      });
    }
  });
}

test('libcap_utils test traces when present: each opens without problems', { skip: !fs.existsSync('/tmp/libcap_utils/tests/traces') && 'libcap_utils sources not unpacked in /tmp (see src/capture/DPMI.md)' }, async () => {
  for (const name of fs.readdirSync('/tmp/libcap_utils/tests/traces').filter((n) => n.endsWith('.cap'))) {
    const summary = await readCapture(path.join('/tmp/libcap_utils/tests/traces', name), collector());
    assert.equal(summary.format, 'dpmi', name);
    assert.deepEqual(summary.problems.map(String), [], name);
  }
});

test('locations stay right when the reader reuses its 4 MiB buffer (a location is remembered by a copy of its name)', async () => {
  // 64-byte records from offset 256: chunk boundaries fall between records, at the same offsets in
  // every chunk. Chunk 1: A, B, B, …; chunk 2: B, A, A, …: a location remembered as a view into
  // the buffer would see the other location's name there.
  const recordsPerChunk = (4 * 1024 * 1024) / 64;
  const frames: DpmiFrame[] = [];
  for (let i = 0; i < 2 * recordsPerChunk; i++) {
    const inSecond = i >= recordsPerChunk;
    const j = i % recordsPerChunk;
    const a = inSecond ? j >= 1 : j === 0;
    frames.push({ sec: 1_800_000_000, ps: i, data: Buffer.alloc(28, i & 0xff), mampid: a ? 'mpA' : 'mpB', nic: 'd00' });
  }
  const header = { comment: 'c'.repeat(40), mpid: 'mpA,mpB' };
  const bytes = encodeDpmi(frames, header);
  assert.equal(bytes.length, 256 + frames.length * 64);
  const dir = fs.mkdtempSync('/tmp/migscope-dpmi-chunks-');
  try {
    const file = path.join(dir, 'chunks.cap');
    fs.writeFileSync(file, bytes);
    const names: string[] = [];
    let wrong = 0;
    const summary = await readCapture(file, {
      interface(iface) { names[iface.id] = iface.name!; },
      packet(r) { if (names[r.interfaceId] !== `${frames[r.index - 1].mampid}:d00`) wrong++; },
    });
    assert.equal(summary.packets, frames.length);
    assert.equal(wrong, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
