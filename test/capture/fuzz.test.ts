// Fuzz: thousands of randomly corrupted / truncated versions of a real capture prefix (as pcap
// and as pcapng). The reader must never throw or hang, and must report damage exactly when an
// independent, deliberately simple walker (written here, sharing no code with the reader) finds
// the framing broken, at the same byte offset, after delivering the same packets.
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { test } from 'node:test';
import { encodePcapng } from '../../src/capture/writer';
import { capturesDir } from '../helpers/paths';
import { framesOf, gunzipFile, readSplit } from './collect';

/** mulberry32: a seeded PRNG, so a failure names a reproducible case. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The first 200 KB of a real capture, cut back to a whole record, and the same frames as pcapng.
const frames = framesOf(gunzipFile(path.join(capturesDir, 'a-p2p-src2dst.pcap.gz'), 200_000));
const original = (() => {
  const raw = gunzipFile(path.join(capturesDir, 'a-p2p-src2dst.pcap.gz'), 200_000);
  let at = 24;
  for (let i = 0; i < frames.length; i++) at += 16 + raw.readUInt32LE(at + 8);
  return Buffer.from(raw.subarray(0, at));
})();
const originalNg = encodePcapng([
  { interfaces: [{ linkType: 1, snaplen: 262144, tsresol: 9, name: 'mon0' }], packets: frames.slice(0, 150).map((f) => ({ ...f, interface: 0 })) },
  { bigEndian: true, interfaces: [{ linkType: 1, tsresol: 6 }, { linkType: 1, tsresol: 0x80 | 20 }], packets: frames.slice(150).map((f, i) => ({ ...f, interface: i % 2 })) },
]);

/** Record header offsets of a valid pcap / block offsets of a valid pcapng, to aim mutations. */
function headerOffsets(bytes: Buffer, pcapng: boolean): number[] {
  const out: number[] = [];
  let le = true;
  for (let at = pcapng ? 0 : 24; at < bytes.length;) {
    out.push(at);
    if (!pcapng) {
      at += 16 + bytes.readUInt32LE(at + 8);
      continue;
    }
    if (bytes.readUInt32BE(at) === 0x0a0d0d0a) le = bytes.readUInt32BE(at + 8) === 0x4d3c2b1a;
    at += le ? bytes.readUInt32LE(at + 4) : bytes.readUInt32BE(at + 4);
  }
  return out;
}

function mutate(source: Buffer, headers: number[], random: () => number): Buffer {
  let bytes = Buffer.from(source);
  const count = 1 + Math.floor(random() * 3);
  const pick = (n: number) => Math.floor(random() * n);
  for (let m = 0; m < count; m++) {
    const kind = pick(6);
    if (kind === 0) {
      bytes = bytes.subarray(0, pick(bytes.length + 1)); // truncate
    } else if (kind === 1) {
      for (let i = pick(8) + 1; i > 0 && bytes.length > 0; i--) bytes[pick(bytes.length)] = pick(256); // random bytes
    } else if (kind <= 3 && bytes.length > 0) {
      // a 32-bit field of some record header: lengths, timestamps, types
      const at = headers[pick(headers.length)] + 4 * pick(kind === 2 ? 4 : 8);
      const values = [0, 0xffffffff, pick(0x100000000), pick(3000), 1 << 18, 0x0a0d0d0a];
      if (at + 4 <= bytes.length) bytes.writeUInt32LE(values[pick(values.length)] >>> 0, at);
    } else if (kind === 4) {
      const at = pick(bytes.length + 1); // insert junk
      bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(Array.from({ length: pick(40) + 1 }, () => pick(256))), bytes.subarray(at)]);
    } else {
      const at = pick(bytes.length + 1); // delete a range
      bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + pick(100) + 1))]);
    }
  }
  return bytes;
}

interface WalkResult { packets: number; damageAt?: number; }

/** A classic-pcap walker in its simplest form. Damage: wrong magic, short header, caplen 0 or
 *  above min(256 KiB, 2·snaplen + 256), a record cut by the end of the input. */
function walkPcap(b: Buffer): WalkResult {
  if (b.length < 4) return { packets: 0, damageAt: 0 };
  const magic = b.readUInt32BE(0);
  const le = magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1;
  if (!le && magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) return { packets: 0, damageAt: 0 };
  if (b.length < 24) return { packets: 0, damageAt: 0 };
  const read = (at: number) => (le ? b.readUInt32LE(at) : b.readUInt32BE(at));
  const snaplen = read(16);
  const limit = snaplen > 0 ? Math.min(262144, snaplen * 2 + 256) : 262144;
  let packets = 0;
  let at = 24;
  while (at < b.length) {
    if (at + 16 > b.length) return { packets, damageAt: at };
    const caplen = read(at + 8);
    if (caplen === 0 || caplen > limit || at + 16 + caplen > b.length) return { packets, damageAt: at };
    packets++;
    at += 16 + caplen;
  }
  return { packets };
}

/** A pcapng block walker: framing damage only (what forces a reader to stop). */
function walkPcapng(b: Buffer): WalkResult {
  let at = 0;
  let le = true;
  let first = true;
  while (at < b.length) {
    if (at + 12 > b.length) return { packets: 0, damageAt: at };
    let type = le ? b.readUInt32LE(at) : b.readUInt32BE(at);
    if (first && b.readUInt32BE(at) !== 0x0a0d0d0a) return { packets: 0, damageAt: 0 };
    if (b.readUInt32BE(at) === 0x0a0d0d0a) {
      const bom = b.readUInt32BE(at + 8);
      if (bom !== 0x1a2b3c4d && bom !== 0x4d3c2b1a) return { packets: 0, damageAt: at };
      le = bom === 0x4d3c2b1a;
      type = 0x0a0d0d0a;
    }
    first = false;
    const length = le ? b.readUInt32LE(at + 4) : b.readUInt32BE(at + 4);
    if (length < 12 || length % 4 !== 0 || length > 16 * 1024 * 1024 || at + length > b.length) return { packets: 0, damageAt: at };
    const trailer = le ? b.readUInt32LE(at + length - 4) : b.readUInt32BE(at + length - 4);
    if (trailer !== length) return { packets: 0, damageAt: at };
    if (type === 0x0a0d0d0a && (le ? b.readUInt16LE(at + 12) : b.readUInt16BE(at + 12)) !== 1) return { packets: 0, damageAt: at };
    at += length;
  }
  return { packets: 0 };
}

test('fuzz: 3000 damaged classic pcaps of a real capture prefix', () => {
  const headers = headerOffsets(original, false);
  assert.equal(walkPcap(original).damageAt, undefined);
  assert.equal(walkPcap(original).packets, frames.length);
  let damaged = 0;
  for (let seed = 1; seed <= 3000; seed++) {
    const random = prng(seed);
    const bytes = mutate(original, headers, random);
    const oracle = walkPcap(bytes);
    const split = [1 + Math.floor(random() * 5000), 1 + Math.floor(random() * 70000)];
    const { summary, got } = readSplit(bytes, split);
    const where = `seed ${seed}`;
    const fatal = summary.problems.filter((p) => p.kind !== 'unsupported');
    if (oracle.damageAt === undefined) {
      assert.deepEqual(fatal, [], where);
      assert.equal(summary.incomplete, false, where);
    } else {
      damaged++;
      assert.equal(fatal.length, 1, `${where}: ${fatal.map((p) => p.message).join('; ')}`);
      assert.equal(fatal[0].byteOffset, oracle.damageAt, `${where}: ${fatal[0].message}`);
      assert.equal(fatal[0].file, 'test');
      assert.equal(summary.incomplete, true, where);
    }
    assert.equal(got.packets.length, oracle.packets, where);
    assert.equal(summary.packets, oracle.packets, where);
  }
  assert.ok(damaged > 1500, `only ${damaged} of 3000 cases were damaged: the fuzzer is too gentle`);
});

test('fuzz: 2000 damaged pcapngs (two sections, three interfaces) never throw and report framing damage', () => {
  const headers = headerOffsets(originalNg, true);
  assert.equal(walkPcapng(originalNg).damageAt, undefined);
  let damaged = 0;
  for (let seed = 1; seed <= 2000; seed++) {
    const random = prng(seed * 7919);
    const bytes = mutate(originalNg, headers, random);
    const oracle = walkPcapng(bytes);
    const { summary, got } = readSplit(bytes, [1 + Math.floor(random() * 3000), 1 + Math.floor(random() * 50000)]);
    const where = `seed ${seed * 7919}`;
    assert.ok(got.packets.length <= frames.length, where);
    for (const p of summary.problems) assert.ok(p.byteOffset !== undefined && p.byteOffset <= bytes.length, `${where}: ${p.message}`);
    if (oracle.damageAt !== undefined) {
      damaged++;
      assert.equal(summary.incomplete, true, where);
      assert.ok(summary.problems.some((p) => p.byteOffset === oracle.damageAt), `${where}: want a problem at ${oracle.damageAt}, got ${summary.problems.map((p) => p.message).join('; ')}`);
    } else {
      assert.equal(summary.incomplete, false, `${where}: ${summary.problems.map((p) => p.message).join('; ')}`);
    }
  }
  assert.ok(damaged > 800, `only ${damaged} of 2000 cases were damaged`);
});
