// DPMI markers sent by the real capmarker (fixtures/dpmi/markers.cap) found with the fields the
// tool was given and that capshow decodes; locations of the real capmerge trace selected and
// de-duplicated so that a flow counts each frame once.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { DuplicateFrameFilter, LocationFilter, locationSinks, matchesLocation } from '../../src/capture/location';
import type { CaptureInterface, PacketRecord } from '../../src/capture/types';
import { runPipeline, Pipeline } from '../../src/flow/pipeline';
import { readCapture } from '../../src/capture/reader';
import { decodeMarker, DpmiMarkerObserver, markerFactors, MARKER_MAGIC, MARKER_SIZE, describeMarker } from '../../src/protocols/dpmi-marker';
import { collector } from './collect';
import { fixture } from '../helpers/paths';

test('markers.cap: the three capmarker markers, fields as sent and as capshow decodes them', async () => {
  const observer = new DpmiMarkerObserver();
  const result = await runPipeline(fixture('dpmi', 'markers.cap'), { observers: [observer] });
  assert.equal(result.stats.packets, 100);
  const got = observer.markers.map((m) => ({
    packet: m.packet, experiment: m.experiment, run: m.run, key: m.key, sequence: m.sequence, flags: m.flags, comment: m.comment, source: m.source, destination: m.destination,
  }));
  // The capmarker command lines of fixtures/dpmi/README.md.
  assert.deepEqual(got, [
    { packet: 7, experiment: 1, run: 1, key: 0, sequence: 0, flags: 0, comment: 'experiment 1 run 1', source: '10.99.0.1:2065', destination: '10.99.0.2:4000' },
    { packet: 67, experiment: 1, run: 2, key: 0, sequence: 5, flags: 0, comment: 'experiment 1 run 2', source: '10.99.0.1:2065', destination: '10.99.0.2:4000' },
    { packet: 89, experiment: 2, run: 1, key: 7, sequence: 0, flags: 1, comment: 'experiment 2 run 1, terminate', source: '10.99.0.1:2065', destination: '10.99.0.2:4001' },
  ]);
  // capshow's own decoding ("MARKER …:exp:run:key:seq") of the markers on port 4000.
  const capshow = fs.readFileSync(fixture('dpmi', 'markers.capshow.txt'), 'utf8').split('\n');
  const oracle = capshow.filter((l) => l.includes('MARKER')).map((l) => {
    const m = /^\[\s*(\d+)\].*MARKER .*:(\d+):(\d+):(\d+):(\d+)\s*$/.exec(l)!;
    return m.slice(1).map(Number);
  });
  assert.deepEqual(oracle, got.filter((m) => m.destination.endsWith(':4000')).map((m) => [m.packet, m.experiment, m.run, m.key, m.sequence]));
  // The sender's clock (time(NULL)) agrees with the capture time to the second.
  for (const m of observer.markers) assert.ok(Math.abs(m.senderTime - m.at.sec) <= 1);
  assert.match(describeMarker(observer.markers[2]), /^DPMI marker exp 2 run 1 key 7 seq 0 terminate \(10\.99\.0\.1:2065 → 10\.99\.0\.2:4001\) "experiment 2 run 1, terminate"$/);
});

test('a port filter keeps markers sent to that port only; the merged trace shows each marker at both locations', async () => {
  const port4001 = new DpmiMarkerObserver({ port: 4001 });
  await runPipeline(fixture('dpmi', 'markers.cap'), { observers: [port4001] });
  assert.deepEqual(port4001.markers.map((m) => m.packet), [89]);
  const merged = new DpmiMarkerObserver();
  await runPipeline(fixture('dpmi', 'merged.cap'), { observers: [merged] });
  assert.equal(merged.markers.length, 6);
  assert.deepEqual(new Set(merged.markers.map((m) => m.interfaceId)), new Set([0, 1]));
});

test('markerFactors: the last marker at or before a migration start gives experiment and run', async () => {
  const observer = new DpmiMarkerObserver();
  await runPipeline(fixture('dpmi', 'markers.cap'), { observers: [observer] });
  const [first, second, third] = observer.markers;
  assert.equal(markerFactors(observer.markers, { sec: first.at.sec - 1, ps: 0 }), undefined);
  assert.deepEqual(markerFactors(observer.markers, first.at), { experiment: '1', run: '1' });
  const between = { sec: second.at.sec, ps: second.at.ps + 1 };
  assert.equal(markerFactors(observer.markers, between)?.run, '2');
  assert.deepEqual(markerFactors(observer.markers, { sec: third.at.sec + 100, ps: 0 }), { experiment: '2', run: '1', key: '7' });
});

test('decodeMarker: needs the magic and the fixed fields; decodes big-endian fields', () => {
  fc.assert(
    fc.property(fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(255), fc.string({ maxLength: 63 }).filter((s) => !s.includes('\0')), (exp, run, seq, flags, comment) => {
      const body = Buffer.alloc(MARKER_SIZE);
      body.writeUInt32BE(MARKER_MAGIC, 0);
      body[4] = 1;
      body[5] = flags;
      body.writeUInt32BE(exp, 8);
      body.writeUInt32BE(run, 12);
      body.writeUInt32BE(seq, 20);
      body.writeBigUInt64BE(1_795_000_000n, 24);
      body.write(comment, 32, 'utf8');
      const m = decodeMarker(body, 0, body.length)!;
      assert.deepEqual([m.experiment, m.run, m.sequence, m.flags, m.version, m.senderTime], [exp, run, seq, flags, 1, 1_795_000_000]);
      assert.equal(m.comment, Buffer.from(comment, 'utf8').subarray(0, 64).toString('utf8').replace(/\0.*$/, ''));
      body.writeUInt32BE((MARKER_MAGIC ^ 1) >>> 0, 0);
      assert.equal(decodeMarker(body, 0, body.length), undefined);
      assert.equal(decodeMarker(body, 0, 20), undefined);
    }),
  );
});

const iface = (id: number, name: string): CaptureInterface => ({ id, name, linkType: 1, snaplen: 0, tsDigits: 12 });

test('matchesLocation: id, exact name, * patterns', () => {
  const a = iface(0, 'mpA:CONV');
  assert.ok(matchesLocation(a, '0'));
  assert.ok(!matchesLocation(a, '1'));
  assert.ok(matchesLocation(a, 'mpA:CONV'));
  assert.ok(!matchesLocation(a, 'mpA'));
  assert.ok(matchesLocation(a, 'mpA:*'));
  assert.ok(matchesLocation(a, '*:CONV'));
  assert.ok(!matchesLocation(a, 'mp.:*'), 'regex characters are literal');
});

test('LocationFilter on the real capmerge trace: one location, its frames only', async () => {
  const got = collector();
  const filter = new LocationFilter(got, ['mpA:*']);
  const summary = await readCapture(fixture('dpmi', 'merged.cap'), filter);
  assert.equal(summary.packets, 200);
  assert.deepEqual(got.interfaces.map((i) => i.name), ['mpA:CONV']);
  assert.equal(got.packets.length, 100);
  assert.ok(got.packets.every((p) => p.interfaceId === got.interfaces[0].id));
  assert.equal(filter.droppedPackets, 100);
  assert.deepEqual(filter.unmatchedSelectors(), []);
  assert.deepEqual(new LocationFilter(got, ['x']).unmatchedSelectors(), ['x']);
});

test('flows of the merged trace count each frame once with duplicate suppression, as in one location', async () => {
  const flowsOf = async (locations: string[] | undefined, suppressDuplicates: boolean) => {
    const pipeline = new Pipeline('merged');
    await readCapture(fixture('dpmi', 'merged.cap'), locationSinks(pipeline, { locations, suppressDuplicates }).sink);
    return pipeline.finish().flows.map((f) =>
      JSON.stringify([f.portA, f.portB, f.stats.map((d) => [d.packets, d.bytes, d.payloadBytes, d.streamBytes, d.retransmissions, d.outOfOrder])]));
  };
  const deduped = await flowsOf(undefined, true);
  const single = await flowsOf(['mpB:CONV'], false);
  const doubled = await flowsOf(undefined, false);
  assert.equal(deduped.length, 1);
  assert.deepEqual(deduped, single);
  assert.notDeepEqual(doubled, single, 'without suppression the frames count twice');
});

test('DuplicateFrameFilter: same bytes at another location within the window is dropped; at the same location, or later, kept', () => {
  const kept: string[] = [];
  const filter = new DuplicateFrameFilter({ packet: (r) => kept.push(`${r.index}`) }, { windowSec: 0.001 });
  filter.interface(iface(0, 'a'));
  filter.interface(iface(1, 'b'));
  const frame = Buffer.from('the same frame bytes, long enough to be a frame..............');
  const other = Buffer.from(frame);
  other[frame.length - 1] ^= 1;
  let index = 0;
  const send = (bytes: Buffer, interfaceId: number, ps: number) => {
    const r: PacketRecord = { buf: bytes, offset: 0, caplen: bytes.length, wirelen: bytes.length, sec: 100, ps, interfaceId, linkType: 1, index: ++index, fileOffset: 0 };
    filter.packet(r);
  };
  send(frame, 0, 0); // 1 kept
  send(frame, 1, 500_000_000); // 2: at b 0.5 ms later: duplicate
  send(other, 1, 600_000_000); // 3: other bytes: kept
  send(frame, 0, 700_000_000); // 4: again at a (a retransmission): kept
  send(frame, 1, 800_000_000); // 5: its copy at b: duplicate
  send(frame, 1, 5_000_000_000); // 6: at b 4 ms later: a new frame
  assert.deepEqual(kept, ['1', '3', '4', '6']);
  assert.equal(filter.duplicates, 2);
});
