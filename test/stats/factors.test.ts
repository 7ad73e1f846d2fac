import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { MigrationRecord } from '../../src/migration/record';
import { compilePattern, directoryFactors, factorsOf, parseManifest, patternFactors } from '../../src/stats/factors';
import { parseCsv } from '../../src/stats/csv-parse';
import { groupRecords, mergeGroups, summarizeGroup, defaultGroupBy } from '../../src/stats/groups';

function record(capture: string, transferSec: number, extra: Partial<MigrationRecord> = {}): MigrationRecord {
  return {
    capture,
    index: 1,
    source: '10.77.0.1',
    destination: '10.77.0.2',
    mode: 'p2p',
    outcome: 'completed',
    tsDigits: 9,
    start: '100.000000000',
    phases: { transfer: { start: '100.1', end: '100.5', seconds: transferSec } },
    migrationTimeSec: transferSec + 1,
    warnings: [],
    ...extra,
  };
}

test('filename pattern: named fields, gz suffix tolerated, non-matching names give nothing', () => {
  const p = compilePattern('{flavor}-{load}-{run}.pcap');
  assert.deepEqual(p.fields, ['flavor', 'load', 'run']);
  assert.deepEqual(patternFactors(p, '/data/exp/small-50-7.pcap.gz'), { flavor: 'small', load: '50', run: '7' });
  assert.deepEqual(patternFactors(p, 'm1.large-0-12.pcap'), { flavor: 'm1.large', load: '0', run: '12' });
  assert.equal(patternFactors(p, 'small-50-7.pcapng'), undefined);
  assert.deepEqual(patternFactors(compilePattern('{flavor}/load{load}/{run}.pcap'), 'x/tiny/load25/3.pcap'), { flavor: 'tiny', load: '25', run: '3' });
  assert.throws(() => compilePattern('plain.pcap'), /no \{field\}/);
  assert.throws(() => compilePattern('{a}-{a}.pcap'), /twice/);
});

test('directory factors: innermost parents named, name=value directories parsed', () => {
  assert.deepEqual(directoryFactors('runs/small/load50/r1.pcap', ['flavor', 'load']), { flavor: 'small', load: 'load50' });
  assert.deepEqual(directoryFactors('runs/flavor=small/load=50/r1.pcap', []), { flavor: 'small', load: '50' });
  assert.deepEqual(directoryFactors('r1.pcap', ['flavor']), {});
});

test('manifest CSV: matched by path or basename; manifest beats pattern beats dirs beats markers', () => {
  const manifestFile = path.resolve('/tmp/exp/manifest.csv');
  const manifest = parseManifest('file,flavor,load\n"a,1.pcap",large,0\nsub/b.pcap.gz,small,"5""0"\n', manifestFile);
  assert.deepEqual(manifest.columns, ['flavor', 'load']);
  const sources = { manifest, pattern: compilePattern('{flavor}-{run}.pcap'), dirFactors: ['site'] };
  const rec = record('/tmp/exp/sub/b.pcap', 1, { markers: { experiment: 'e1', flavor: 'marker' } });
  assert.deepEqual(factorsOf(rec, sources), { experiment: 'e1', flavor: 'small', load: '5"0', site: 'sub' });
  assert.deepEqual(factorsOf(record('elsewhere/tiny-3.pcap', 1), sources), { site: 'elsewhere', flavor: 'tiny', run: '3' });
  assert.deepEqual(factorsOf(record('/other/a,1.pcap', 1), { manifest }), { flavor: 'large', load: '0' });
  assert.throws(() => parseManifest('name,flavor\nx,1\n', 'm.csv'), /column named/);
});

test('CSV reader: quotes, doubled quotes, CRLF, BOM, embedded newlines; unterminated quote is an error', () => {
  assert.deepEqual(parseCsv('\ufeffa,b\r\n"x ""y""","1\n2"\r\n'), [['a', 'b'], ['x "y"', '1\n2']]);
  assert.deepEqual(parseCsv('a,,c'), [['a', '', 'c']]);
  assert.throws(() => parseCsv('"open'), /quoted/);
});

test('grouping: default leaves out run counters; failed migrations counted but not in statistics', () => {
  const p = compilePattern('{flavor}-{run}.pcap');
  const records = [
    record('small-1.pcap', 1),
    record('small-2.pcap', 3),
    record('large-1.pcap', 10),
    record('large-2.pcap', 99, { outcome: 'failed' }),
  ];
  const factorFn = (r: MigrationRecord) => factorsOf(r, { pattern: p });
  assert.deepEqual(defaultGroupBy(records.map(factorFn)), ['flavor']);
  const groups = groupRecords(records, factorFn);
  assert.deepEqual(groups.map((g) => [g.key, g.migrations, g.included]), [['flavor=small', 2, 2], ['flavor=large', 2, 1]]);
  assert.deepEqual(groups[1].outcomes, { completed: 1, failed: 1 });
  const small = summarizeGroup(groups[0], { method: 't', confidence: 0.95 });
  assert.equal(small.metrics['phase.transfer'].mean, 2);
  assert.equal(small.metrics.migrationTime.mean, 3);
  assert.deepEqual(small.phaseShares.map((s) => [s.phase, s.share]), [['phase.transfer', 1]]);
  const withFailed = groupRecords(records, factorFn, { includeFailed: true });
  assert.equal(withFailed[1].metrics['phase.transfer'].n, 2);
  const one = groupRecords(records, factorFn, { groupBy: [] });
  assert.deepEqual(one.map((g) => g.key), ['all']);
  const byRun = groupRecords(records, factorFn, { groupBy: ['run', 'load'] });
  assert.equal(byRun[0].key, 'run=1, load=(none)');
});

test('default grouping skips per-capture ids and measurements (the lab manifest wall-time column)', () => {
  const manifest = parseManifest(
    'file,mode,ram_mib,load_pct,run,virsh_wall_ms\n' +
      'g/a1.pcap,p2p,128,0,1,2718.9\ng/a2.pcap,p2p,128,0,2,2801.2\ng/b1.pcap,p2p,128,50,1,3120.0\ng/b2.pcap,p2p,128,50,2,3004.5\n',
    '/lab/manifest.csv',
  );
  const recs = ['a1', 'a2', 'b1', 'b2'].map((n) => record(`/lab/g/${n}.pcap`, 1));
  const factorFn = (r: MigrationRecord) => factorsOf(r, { manifest });
  assert.deepEqual(defaultGroupBy(recs.map(factorFn), recs.map((r) => r.capture)), ['mode', 'ram_mib', 'load_pct']);
  assert.deepEqual(groupRecords(recs, factorFn).map((g) => [g.key, g.included]), [['mode=p2p, ram_mib=128, load_pct=0', 2], ['mode=p2p, ram_mib=128, load_pct=50', 2]]);
});

test('DPMI markers: one long capture, migrations grouped by experiment, run is a repetition', () => {
  const recs = [1, 2, 3, 4, 5, 6].map((i) => ({ ...record('/dpmi/all-day.cap', i), index: i, markers: { experiment: i <= 3 ? '7' : '8', run: String(((i - 1) % 3) + 1) } }));
  const factorFn = (r: MigrationRecord) => factorsOf(r, {});
  assert.deepEqual(defaultGroupBy(recs.map(factorFn), recs.map((r) => r.capture)), ['experiment']);
  const groups = groupRecords(recs, factorFn);
  assert.deepEqual(groups.map((g) => [g.key, g.included, g.metrics['phase.transfer'].mean]), [['experiment=7', 3, 2], ['experiment=8', 3, 5]]);
});

test('group partials from separate record sets merge into the whole', () => {
  const factorFn = () => ({});
  const records = [1, 2, 3, 4, 5, 6, 7].map((v, i) => record(`r${i}.pcap`, v));
  const whole = groupRecords(records, factorFn)[0];
  const merged = mergeGroups(groupRecords(records.slice(0, 3), factorFn)[0], groupRecords(records.slice(3), factorFn)[0]);
  assert.equal(merged.migrations, whole.migrations);
  const a = summarizeGroup(merged, { method: 'normal', confidence: 0.95 }).metrics['phase.transfer'];
  const b = summarizeGroup(whole, { method: 'normal', confidence: 0.95 }).metrics['phase.transfer'];
  assert.equal(a.n, b.n);
  assert.ok(Math.abs((a.sd as number) - (b.sd as number)) < 1e-12);
  assert.equal(a.median, b.median);
});
