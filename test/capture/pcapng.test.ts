// pcapng specifics: several sections with their own byte order and interfaces (ids renumbered
// capture-wide), if_tsresol powers of 10 and of 2, if_tsoffset, EPB/SPB/OPB, skipped blocks,
// comments; cross-checked against tshark when it is installed.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { LinkType } from '../../src/capture/types';
import { encodePcapng, pcapngUnits, type PcapngSectionSpec } from '../../src/capture/writer';
import { expectedTime, readSplit } from './collect';

const frame = (n: number, length = 60) => Buffer.alloc(length, n);

const sections: PcapngSectionSpec[] = [
  {
    comment: 'first section, little-endian',
    interfaces: [
      { linkType: LinkType.ETHERNET, snaplen: 262144, tsresol: 9, name: 'mon0', description: 'mirror port' },
      { linkType: LinkType.RAW, snaplen: 40, tsresol: 0x80 | 20 }, // 2^-20 s
    ],
    otherBlocks: [{ type: 4, body: Buffer.alloc(8) }, { type: 0x40000bad, body: Buffer.from('custom block body') }],
    packets: [
      { interface: 0, sec: 1_795_389_892, ps: 437_462_011_000, data: frame(1) },
      { interface: 1, sec: 1_795_389_892, ps: 500_000_000_000, data: frame(2, 40), wirelen: 1500 },
      { interface: 0, sec: 1_795_389_893, ps: 999_999_999_000, data: frame(3), block: 'opb' },
    ],
  },
  {
    bigEndian: true,
    comment: 'second section, big-endian',
    interfaces: [
      { linkType: LinkType.LINUX_SLL2, snaplen: 64, tsresol: 6, tsoffset: 1_700_000_000 },
      { linkType: LinkType.ETHERNET, tsresol: 0x80 | 40, tsoffset: 1_795_389_000 }, // 2^-40 s: finer than 1 ps
      { linkType: LinkType.IPV4, tsresol: 3, tsoffset: -10 },
    ],
    otherBlocks: [{ type: 5, body: Buffer.alloc(12) }],
    packets: [
      { interface: 1, sec: 1_795_389_894, ps: 123_456_789_012, data: frame(4, 61) },
      { interface: 0, sec: 1_795_389_894, ps: 123_456_000_000, data: frame(5, 64), block: 'spb' },
      { interface: 2, sec: 1_795_389_895, ps: 7_000_000_000, data: frame(6, 30) },
      { interface: 0, sec: 1_795_389_895, ps: 1_000_000, data: frame(7, 64), wirelen: 200 },
    ],
  },
  { interfaces: [{ linkType: LinkType.ETHERNET }], packets: [{ interface: 0, sec: 5, ps: 6_000_000, data: frame(8) }] },
];
const bytes = encodePcapng(sections);

test('several sections, interfaces, resolutions and block types', () => {
  for (const split of [[bytes.length], [1], [12], [33, 7, 100]]) {
    const { summary, got } = readSplit(bytes, split);
    assert.deepEqual(summary.problems, []);
    assert.equal(summary.format, 'pcapng');
    assert.equal(summary.comment, 'first section, little-endian\nsecond section, big-endian');
    assert.deepEqual(summary.interfaces.map((i) => [i.id, i.linkType, i.snaplen, i.tsDigits]), [
      [0, 1, 262144, 9], [1, 101, 40, 7], [2, 276, 64, 6], [3, 1, 0, 12], [4, 228, 0, 3], [5, 1, 0, 6],
    ]);
    assert.equal(summary.interfaces[0].name, 'mon0');
    assert.equal(summary.interfaces[0].description, 'mirror port');
    assert.deepEqual(got.interfaces, summary.interfaces);

    const flat = sections.flatMap((s, si) => s.packets.map((p) => ({ s, si, p })));
    const firstId = [0, 2, 5];
    assert.equal(got.packets.length, flat.length);
    got.packets.forEach((packet, i) => {
      const { s, si, p } = flat[i];
      const spec = s.interfaces[p.interface];
      assert.equal(packet.index, i + 1);
      assert.equal(packet.interfaceId, firstId[si] + p.interface);
      assert.equal(packet.linkType, spec.linkType);
      assert.equal(packet.wirelen, p.wirelen ?? p.data.length);
      assert.deepEqual(packet.data, Buffer.from(p.data));
      if (p.block === 'spb') {
        // No timestamp in an SPB: the previous packet's time is kept.
        assert.deepEqual([packet.sec, packet.ps], [got.packets[i - 1].sec, got.packets[i - 1].ps]);
      } else {
        const want = expectedTime(spec, pcapngUnits(spec, p.sec, p.ps));
        assert.deepEqual({ sec: packet.sec, ps: packet.ps }, want, `packet ${i + 1}`);
      }
    });
    // 10^-9 and 10^-6 keep the written instant exactly (the writer put whole units).
    assert.deepEqual([got.packets[0].sec, got.packets[0].ps], [1_795_389_892, 437_462_011_000]);
    assert.deepEqual([got.packets[6].sec, got.packets[6].ps], [1_795_389_895, 1_000_000]);
    // 2^-40 s is finer than a picosecond: within half a ps of the instant written.
    assert.ok(Math.abs(got.packets[3].ps - 123_456_789_012) <= 1);
  }
});

test('SPB: captured length is the original length cut by the snaplen', () => {
  const spb = encodePcapng([{
    interfaces: [{ linkType: 1, snaplen: 32 }],
    packets: [{ interface: 0, sec: 1, ps: 0, data: frame(9, 32), wirelen: 1514, block: 'spb' }],
  }]);
  const { summary, got } = readSplit(spb);
  assert.deepEqual(summary.problems, []);
  assert.equal(got.packets[0].caplen, 32);
  assert.equal(got.packets[0].wirelen, 1514);
});

test('pcapng timestamps above 2^53 units (ns, µs from 2^21 high words on) stay exact', () => {
  const spec = { linkType: 1, tsresol: 9 };
  const cases = [[0, 1], [4_294_967_295, 999_999_999_999], [1_795_389_892, 999_999_999_000], [2 ** 33, 1_000]];
  const packets = cases.map(([sec, ps]) => ({ interface: 0, sec, ps, data: frame(1) }));
  const { got } = readSplit(encodePcapng([{ interfaces: [spec], packets }]));
  assert.deepEqual(got.packets.map((p) => [p.sec, p.ps]), cases.map(([sec, ps]) => [sec, ps - (ps % 1000)]));
});

const tshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
test('tshark reads the same frames, interfaces and times from the multi-section file',
  { skip: tshark ? undefined : 'tshark not installed (oracle cross-check only)' }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-pcapng-'));
    const file = path.join(dir, 'multi.pcapng');
    fs.writeFileSync(file, bytes);
    const out = spawnSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.number', '-e', 'frame.interface_id', '-e', 'frame.time_epoch',
      '-e', 'frame.cap_len', '-e', 'frame.len'], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(out.status, 0, out.stderr);
    // tshark 4.0 also lists custom blocks as frames (no interface): leave those out.
    const rows = out.stdout.trim().split('\n').map((l) => l.split('\t')).filter((r) => r[1] !== '');
    const { got } = readSplit(bytes);
    const flat = sections.flatMap((s) => s.packets.map((p) => ({ p, resol: s.interfaces[p.interface].tsresol ?? 6 })));
    assert.equal(rows.length, got.packets.length);
    rows.forEach(([, interfaceId, epoch, caplen, len], i) => {
      const p = got.packets[i];
      // tshark's frame.interface_id is the section-local id; ours is unique over the capture.
      assert.equal(Number(interfaceId), flat[i].p.interface, `packet ${i + 1} interface`);
      assert.equal(Number(caplen), p.caplen);
      assert.equal(Number(len), p.wirelen);
      if (flat[i].p.block === 'spb') return; // tshark shows no time for an SPB
      // tshark computes frac·10^9 in 64 bits, which overflows for 2^-n with n > 34.
      if (flat[i].resol & 0x80 && (flat[i].resol & 0x7f) > 34) return;
      const [sec, ns] = epoch.split('.');
      const ours = BigInt(p.sec) * 1_000_000_000n + BigInt(Math.floor(p.ps / 1000));
      const theirs = BigInt(sec) * 1_000_000_000n + BigInt((ns ?? '').padEnd(9, '0'));
      assert.ok(ours - theirs <= 1n && theirs - ours <= 1n, `packet ${i + 1}: ${p.sec}.${p.ps} vs ${epoch}`);
    });
  });
