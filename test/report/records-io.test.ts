import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { MigrationRecord } from '../../src/migration/record';
import { recordsFromCsv, recordsFromJson, recordsToCsv } from '../../src/report/records-io';

const sample: MigrationRecord = {
  capture: 'runs/a "quoted", name.pcap',
  index: 2,
  domain: 'vm',
  source: '10.77.0.1',
  destination: '10.77.0.2',
  mode: 'tunnelled',
  live: true,
  outcome: 'completed',
  tsDigits: 9,
  start: '1795389893.936586159',
  end: '1795389896.655575005',
  phases: {
    remoteConnect: { start: '1795389893.936586159', end: '1795389894.000000001', seconds: 0.063413842 },
    transfer: { start: '1795389894.1', end: '1795389894.774', seconds: 0.674 },
  },
  migrationTimeSec: 2.718988846,
  transfer: { bytes: 53925681, throughputBps: 187803045.5, connection: '10.77.0.1:40000 → 10.77.0.2:49152' },
  downtime: { probeTarget: '10.77.0.10', probesSent: 6495, probesLost: 12, intervalMs: 1, lostTimesIntervalSec: 0.012, gapSec: 0.14716, repliesVisible: true },
  markers: { experiment: 'e1', run: '7' },
  warnings: ['15 retransmissions', 'reordered'],
};

test('CSV round trip keeps every field the CSV carries, exactly', () => {
  const back = recordsFromCsv(recordsToCsv([sample]));
  assert.deepEqual(back, [sample]);
});

test('CSV round trip of arbitrary durations keeps doubles bit-exact', () => {
  fc.assert(
    fc.property(fc.double({ min: 0, max: 1e4, noNaN: true }), fc.double({ min: 0, max: 1e12, noNaN: true }), (seconds, bytes) => {
      const r: MigrationRecord = { ...sample, markers: undefined, phases: { transfer: { start: '1.0', end: '2.0', seconds } }, transfer: { bytes, throughputBps: bytes / 2 } };
      delete r.markers;
      const [back] = recordsFromCsv(recordsToCsv([r]));
      assert.equal(back.phases.transfer?.seconds, seconds);
      assert.equal(back.transfer?.bytes, bytes);
    }),
  );
});

test('JSON: a record list, one capture analysis, a list of analyses, JSON Lines', () => {
  assert.equal(recordsFromJson(JSON.stringify([sample, sample])).length, 2);
  assert.equal(recordsFromJson(JSON.stringify({ capture: 'x.pcap', migrations: [sample] })).length, 1);
  assert.equal(recordsFromJson(JSON.stringify([{ migrations: [sample] }, { records: [sample, sample] }])).length, 3);
  assert.equal(recordsFromJson(`${JSON.stringify(sample)}\n${JSON.stringify(sample)}\n`).length, 2);
});

test('files that are not records are refused with a reason', () => {
  assert.throws(() => recordsFromJson('{"capture":"a-p2p-src2dst.pcap","virsh_rc":0}'), /no migration records/);
  assert.throws(() => recordsFromJson('{not json'), /JSON/);
  assert.throws(() => recordsFromJson('[{"capture":7,"index":1,"phases":{},"outcome":"completed"}]'), /must be strings/);
  assert.throws(() => recordsFromCsv('file,flavor\nx,1\n'), /capture and index/);
  assert.throws(() => recordsFromCsv('capture,index,migrationTimeSec\nx,1,abc\n'), /not a number/);
});
