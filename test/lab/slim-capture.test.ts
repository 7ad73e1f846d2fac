// The slimmer must behave like a short snaplen on the migration-data connection only: same
// frames, timestamps and wire lengths; libvirt RPC, ICMP and everything else byte-identical.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { capturesDir } from '../helpers/paths';
import { ipv4Info, readPcap, type PcapRecord } from '../../scripts/lab/pcap-records';
import { isMigrationDataPort, slimCapture } from '../../scripts/lab/slim-capture';

interface Row { sec: number; frac: number; caplen: number; wirelen: number; digest: string; migration: boolean; headerLen: number }

async function rows(file: string): Promise<{ nanosecond: boolean; snaplen: number; rows: Row[] }> {
  const out: Row[] = [];
  let nanosecond = false;
  let snaplen = 0;
  await readPcap(
    file,
    (h) => ((nanosecond = h.nanosecond), (snaplen = h.snaplen)),
    (r: PcapRecord) => {
      const info = ipv4Info(r.data);
      const migration = !!info && info.proto === 6 && (isMigrationDataPort(info.sport) || isMigrationDataPort(info.dport));
      out.push({
        sec: r.sec, frac: r.frac, caplen: r.caplen, wirelen: r.wirelen, migration,
        headerLen: info ? info.payloadOffset : 0,
        digest: crypto.createHash('sha1').update(r.data).digest('hex'),
      });
    },
  );
  return { nanosecond, snaplen, rows: out };
}

const input = path.join(capturesDir, 'a-p2p-src2dst.pcap.gz');

test('slimming a real p2p capture keeps every frame, time and wire length', { skip: fs.existsSync(input) ? undefined : `${input} missing` }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-slim-'));
  try {
    const output = path.join(dir, 'slim.pcap.gz');
    const stats = await slimCapture(input, output, { keepPayload: 4 });
    const before = await rows(input);
    const after = await rows(output);
    assert.equal(after.nanosecond, before.nanosecond);
    assert.equal(after.snaplen, before.snaplen);
    assert.equal(after.rows.length, before.rows.length);
    assert.equal(stats.packets, before.rows.length);
    let slimmed = 0;
    for (let i = 0; i < before.rows.length; i++) {
      const b = before.rows[i];
      const a = after.rows[i];
      assert.equal(a.sec, b.sec);
      assert.equal(a.frac, b.frac);
      assert.equal(a.wirelen, b.wirelen);
      if (b.migration) {
        assert.equal(a.caplen, Math.min(b.caplen, b.headerLen + 4), `frame ${i + 1}`);
        if (a.caplen < b.caplen) slimmed++;
      } else {
        assert.equal(a.caplen, b.caplen, `frame ${i + 1}`);
        assert.equal(a.digest, b.digest, `frame ${i + 1} must be untouched`);
      }
    }
    assert.equal(slimmed, stats.slimmed);
    // ~37,000 full-size segments of the memory stream (see the capture README's conv table).
    assert.ok(slimmed > 30000, `slimmed ${slimmed}`);
    assert.ok(fs.statSync(output).size * 5 < fs.statSync(input).size);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a file that is not a pcap is refused with its name', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-slim-'));
  try {
    const bad = path.join(dir, 'bad.pcap');
    fs.writeFileSync(bad, Buffer.alloc(100, 7));
    await assert.rejects(slimCapture(bad, path.join(dir, 'out.pcap'), { keepPayload: 4 }), /bad\.pcap: not a classic pcap/);
    // Truncated inside a record: the place is reported.
    const real = Buffer.alloc(24 + 16 + 10);
    real.writeUInt32LE(0xa1b23c4d, 0);
    real.writeUInt32LE(65535, 16);
    real.writeUInt32LE(1, 20);
    real.writeUInt32LE(60, 24 + 8);
    fs.writeFileSync(bad, real);
    await assert.rejects(slimCapture(bad, path.join(dir, 'out.pcap'), { keepPayload: 4 }), /truncated record after frame 0 at byte 24/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
