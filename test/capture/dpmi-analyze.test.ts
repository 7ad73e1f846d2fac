// DPMI end to end: `analyze` on the real DPMI trace gives the same migration as on its pcap twin
// (instants equal to the microsecond), and real capmarker frames placed into that trace give the
// migration its experiment/run factors and show up on its --timeline.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { encodeDpmi, type DpmiFrame } from '../../src/capture/dpmi-writer';
import { readCapture } from '../../src/capture/reader';
import { timelineText } from '../../src/cli/analyze';
import { formatTimestamp, parseTimestamp } from '../../src/core/timestamp';
import { runPipeline } from '../../src/flow/pipeline';
import { analyzeCapture } from '../../src/migration/analyze-capture';
import { defaultEnrichers } from '../../src/migration/enrichers';
import type { MigrationRecord } from '../../src/migration/record';
import { DpmiMarkerEnricher } from '../../src/protocols/dpmi-marker';
import { collector, gunzipFile } from './collect';
import { capturesDir, fixture } from '../helpers/paths';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-dpmi-analyze-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** "sec.fraction" cut to 6 digits: the resolution pcap2cap kept. */
const micro = (instant: string | undefined) => (instant === undefined ? undefined : instant.replace(/^(\d+\.\d{6})\d*$/, '$1'));

function comparable(r: MigrationRecord) {
  return {
    source: r.source, destination: r.destination, mode: r.mode, outcome: r.outcome, reason: r.reason,
    start: micro(r.start), end: micro(r.end),
    phases: Object.fromEntries(Object.entries(r.phases).map(([name, p]) => [name, [micro(p!.start), micro(p!.end), p!.startPacket, p!.endPacket]])),
  };
}

for (const name of ['a-p2p-src2dst', 'f-fail-nobridge']) {
  test(`analyze and flows: ${name}.cap.gz gives the migration and flows of its pcap twin, instants equal to the µs`, async () => {
    const [cap, pcap] = await Promise.all([
      analyzeCapture(path.join(capturesDir, `${name}.cap.gz`), { enrichers: [] }),
      analyzeCapture(path.join(capturesDir, `${name}.pcap.gz`), { enrichers: [] }),
    ]);
    assert.ok(cap.records.length >= 1);
    assert.ok(Object.keys(cap.records[0].phases).length >= 3, 'phases found');
    assert.deepEqual(cap.records.map(comparable), pcap.records.map(comparable));
    assert.equal(cap.records[0].tsDigits, 12);
    assert.equal(cap.summary.tcpFlows, pcap.summary.tcpFlows);
    const flows = async (file: string) =>
      (await runPipeline(path.join(capturesDir, file))).flows.map((f) =>
        JSON.stringify([f.portA, f.portB, micro(formatTimestamp(f.first, 12)), micro(formatTimestamp(f.last, 12)),
          f.stats.map((d) => ({ ...d, firstPs: Math.floor(d.firstPs / 1e6), lastPs: Math.floor(d.lastPs / 1e6) }))]));
    assert.deepEqual(await flows(`${name}.cap.gz`), await flows(`${name}.pcap.gz`));
  });
}

test('real capmarker frames in a real migration trace: experiment/run factors and timeline lines', async () => {
  const migration = gunzipFile(path.join(capturesDir, 'f-fail-nobridge.cap.gz'));
  const frames = collector();
  fs.writeFileSync(path.join(tmp, 'plain.cap'), migration);
  await readCapture(path.join(tmp, 'plain.cap'), frames);
  const plain = await analyzeCapture(path.join(tmp, 'plain.cap'), { enrichers: [] });
  const start = parseTimestamp(plain.records[0].start);

  const markerSource = collector();
  await readCapture(fixture('dpmi', 'markers.cap'), markerSource);
  const markerFrame = (packet: number, sec: number, ps: number): DpmiFrame => {
    const p = markerSource.packets[packet - 1];
    return { sec, ps, data: p.data, wirelen: p.wirelen, mampid: 'mirror', nic: 'CONV' };
  };
  // Marker 1 (exp 1 run 1) 2 s before the migration, marker 2 (exp 1 run 2) 1 s before it, marker 3 after the end.
  const lastSec = frames.packets[frames.packets.length - 1].sec;
  const inserted = [markerFrame(7, start.sec - 2, start.ps), markerFrame(67, start.sec - 1, start.ps), markerFrame(89, lastSec + 1, 0)];
  const all: DpmiFrame[] = [...frames.packets.map((p) => ({ sec: p.sec, ps: p.ps, data: p.data, wirelen: p.wirelen, mampid: 'mirror', nic: 'CONV' })), ...inserted]
    .sort((a, b) => a.sec - b.sec || a.ps - b.ps);
  const file = path.join(tmp, 'with-markers.cap');
  fs.writeFileSync(file, encodeDpmi(all, { comment: 'f-fail-nobridge with real capmarker frames', mpid: 'mirror' }));

  // The default enrichers (what the CLI uses) include the marker enricher.
  const enrichers = defaultEnrichers();
  const enricher = enrichers.find((e): e is DpmiMarkerEnricher => e instanceof DpmiMarkerEnricher);
  assert.ok(enricher, 'analyze uses the DPMI marker enricher by default');
  const details: string[] = [];
  const analysis = await analyzeCapture(file, {
    enrichers,
    onMigration: (record, detail) => details.push(timelineText(record, detail)),
  });
  assert.equal(enricher.markers.length, 3);
  assert.equal(analysis.records.length, plain.records.length);
  assert.deepEqual(analysis.records[0].markers, { experiment: '1', run: '2' });
  assert.equal(analysis.records[0].start, plain.records[0].start);
  const timeline = details[0];
  assert.match(timeline, /#\d+ {2}10\.99\.0\.1:2065 → 10\.99\.0\.2:4000 {2}DPMI marker exp 1 run 2 MESSAGE serial 5 OK {2}"experiment 1 run 2"/);
  assert.doesNotMatch(timeline, /exp 1 run 1|exp 2 run 1/, 'only the governing marker and those during the migration');
});
