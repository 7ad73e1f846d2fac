// scripts/compare-cap-twins.ts on our fixtures (real pcap2cap conversions with their pcap twins)
// and, when its sources are unpacked in /tmp, on libcap_utils' own tests/traces.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { compareTwins, markdownTable } from '../../scripts/compare-cap-twins';
import { fixturesDir } from '../helpers/paths';

test('fixtures: every .cap with a .pcap twin has identical frames, lengths and µs timestamps', async () => {
  const results = await compareTwins(fixturesDir);
  const twins = results.filter((r) => r.pcap);
  assert.deepEqual(twins.map((r) => r.name).sort(), ['captures/a-p2p-src2dst.cap.gz', 'captures/f-fail-nobridge.cap.gz', 'dpmi/markers.cap']);
  for (const r of twins) assert.deepEqual([r.verdict, r.identical], ['same', r.pcapPackets], r.name);
  assert.match(markdownTable(results), /3 of 3 twins identical/);
});

test('a twin that differs is named with its first difference', async () => {
  const dir = fs.mkdtempSync('/tmp/migscope-twins-');
  try {
    fs.copyFileSync(`${fixturesDir}/dpmi/markers.cap`, `${dir}/m.cap`);
    const pcap = fs.readFileSync(`${fixturesDir}/dpmi/markers.pcap`);
    pcap[24 + 16 + 20] ^= 0xff; // a byte of the first frame
    fs.writeFileSync(`${dir}/m.pcap`, pcap);
    const [r] = await compareTwins(dir);
    assert.equal(r.verdict, 'different');
    assert.equal(r.identical, 99);
    assert.equal(r.firstDifference, 'packet 1: frame bytes differ');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const libraryTraces = '/tmp/libcap_utils/tests';
test('libcap_utils tests/traces: every twin identical, every trace read to the end', { skip: !fs.existsSync(libraryTraces) && `${libraryTraces} not present (unpack DPMI/libcap_utils there, see src/capture/DPMI.md)` }, async () => {
  const results = await compareTwins(libraryTraces);
  const twins = results.filter((r) => r.pcap);
  assert.equal(twins.length, 6);
  assert.ok(twins.every((r) => r.verdict === 'same'), markdownTable(twins));
  assert.ok(results.every((r) => r.verdict !== 'unreadable' && r.verdict !== 'different'), markdownTable(results));
});
