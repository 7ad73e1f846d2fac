// `migscope report` end to end through the compiled CLI: records in, statistics out, checked
// against figures computed here independently (simple-statistics two-pass + published t values).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mean, sampleStandardDeviation, median } from 'simple-statistics';
import type { MigrationRecord } from '../../src/migration/record';
import { cliPath, capturesDir, sharedCapturesDir } from '../helpers/paths';

const T975_DF4 = 2.7764451; // published t(0.975, 4)
const Z975 = 1.959963984540054;

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliPath, 'report', ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-report-cli-'));
}

function record(capture: string, transfer: number, outcome: MigrationRecord['outcome'] = 'completed'): MigrationRecord {
  return {
    capture, index: 1, source: '10.77.0.1', destination: '10.77.0.2', mode: 'p2p', outcome, tsDigits: 9, start: '100.000000000',
    phases: { preparation: { start: '100.0', end: '100.3', seconds: 0.3 }, transfer: { start: '100.3', end: '101.0', seconds: transfer } },
    migrationTimeSec: 0.3 + transfer, transfer: { bytes: 1e6 * transfer, throughputBps: 1e6 }, warnings: [],
  };
}

const small = [0.61, 0.64, 0.59, 0.66, 0.62];
const large = [2.1, 2.05, 2.2, 2.12, 2.09];
const records = [
  ...small.map((t, i) => record(`small-0-${i + 1}.pcap`, t)),
  ...large.map((t, i) => record(`large-0-${i + 1}.pcap`, t)),
  record('large-0-6.pcap', 9.9, 'failed'),
];

interface SummaryJson {
  ci: { method: string };
  groupBy: string[];
  problems: { file: string; message: string }[];
  groups: { key: string; migrations: number; included: number; metrics: Record<string, { n: number; mean: number; sd: number; ciHalfWidth: number; ciLow: number; cov: number; median: number; min: number; max: number }> }[];
}

test('records JSON + filename pattern: groups and statistics match an independent computation (t and normal)', () => {
  const dir = tmpdir();
  const file = path.join(dir, 'records.json');
  fs.writeFileSync(file, JSON.stringify(records));
  for (const [method, critical] of [['t', T975_DF4], ['normal', Z975]] as const) {
    const r = run([file, '--pattern', '{flavor}-{load}-{run}.pcap', '--ci', method, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as SummaryJson;
    assert.equal(summary.ci.method, method);
    assert.deepEqual(summary.groupBy, ['flavor', 'load']);
    assert.deepEqual(summary.groups.map((g) => [g.key, g.migrations, g.included]), [['flavor=small, load=0', 5, 5], ['flavor=large, load=0', 6, 5]]);
    for (const [g, xs] of [[summary.groups[0], small], [summary.groups[1], large]] as const) {
      const s = g.metrics['phase.transfer'];
      const sd = sampleStandardDeviation(xs);
      assert.equal(s.n, 5);
      assert.ok(Math.abs(s.mean - mean(xs)) < 1e-12);
      assert.ok(Math.abs(s.sd - sd) < 1e-12);
      assert.ok(Math.abs(s.ciHalfWidth - (critical * sd) / Math.sqrt(5)) < 1e-7 * sd, `${method} half width`);
      assert.ok(Math.abs(s.cov - sd / mean(xs)) < 1e-12);
      assert.equal(s.median, median(xs));
      assert.equal(s.max, Math.max(...xs), 'the failed run stays out of the statistics');
    }
  }
  const table = run([file, '--pattern', '{flavor}-{load}-{run}.pcap']);
  assert.match(table.stdout, /Student t/);
  assert.match(table.stdout, /5 of 6 migrations in statistics \(5 completed, 1 failed\)/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a group without a completed migration says so instead of printing empty tables', () => {
  const dir = tmpdir();
  const file = path.join(dir, 'failed.json');
  fs.writeFileSync(file, JSON.stringify([record('x-1.pcap', 1, 'failed'), record('x-2.pcap', 1, 'cancelled')]));
  const r = run([file]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /0 of 2 migrations in statistics \(1 failed, 1 cancelled\)\nNo statistics: no completed migration/);
  const withFailed = JSON.parse(run([file, '--include-failed', '--json']).stdout) as SummaryJson;
  assert.equal(withFailed.groups[0].metrics['phase.transfer'].n, 2);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('bad inputs are listed and set exit code 3; the good ones are still reported', () => {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, 'good.json'), JSON.stringify(records.slice(0, 5)));
  fs.writeFileSync(path.join(dir, 'broken.pcap'), Buffer.from('this is not a capture at all, just text'));
  const r = run([path.join(dir, 'good.json'), path.join(dir, 'broken.pcap'), path.join(capturesDir, 'a-p2p-src2dst.json'), path.join(dir, 'missing.pcap'), '--json', '--jobs', '1']);
  assert.equal(r.status, 3, r.stderr);
  const summary = JSON.parse(r.stdout) as SummaryJson;
  assert.deepEqual(summary.problems.map((p) => path.basename(p.file)).sort(), ['a-p2p-src2dst.json', 'broken.pcap', 'missing.pcap']);
  assert.equal(summary.groups[0].included, 5);
  const none = run([path.join(dir, 'missing.pcap'), '-q']);
  assert.equal(none.status, 2, 'no usable input at all');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('--save-records CSV fed back in gives the same statistics; --out writes every format', () => {
  const dir = tmpdir();
  const file = path.join(dir, 'records.json');
  fs.writeFileSync(file, JSON.stringify(records));
  const first = run([file, '--pattern', '{flavor}-{load}-{run}.pcap', '--json', '--save-records', path.join(dir, 'saved.csv'), '--out', path.join(dir, 'out')]);
  assert.equal(first.status, 0, first.stderr);
  const again = run([path.join(dir, 'saved.csv'), '--pattern', '{flavor}-{load}-{run}.pcap', '--json']);
  const strip = (text: string) => (JSON.parse(text) as SummaryJson).groups;
  assert.deepEqual(strip(again.stdout), strip(first.stdout));
  const out = fs.readdirSync(path.join(dir, 'out')).sort();
  assert.deepEqual(out, ['charts', 'report.html', 'report.md', 'summary.csv', 'summary.json']);
  const md = fs.readFileSync(path.join(dir, 'out', 'report.md'), 'utf8');
  assert.match(md, /## flavor=small, load=0/);
  assert.match(md, /\| transfer \| s \| 5 \| 0\.6240 \|/);
  const csvLines = fs.readFileSync(path.join(dir, 'out', 'summary.csv'), 'utf8').trim().split('\n');
  assert.equal(csvLines[0].split(',').slice(0, 5).join(','), 'group,flavor,load,metric,unit');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('manifest and directory factors; --group-by picks the grouping', () => {
  const dir = tmpdir();
  for (const [sub, rec] of [['small', records[0]], ['small', records[1]], ['large', records[5]]] as const) {
    fs.mkdirSync(path.join(dir, sub), { recursive: true });
    fs.writeFileSync(path.join(dir, sub, `${path.basename(rec.capture)}.json`), JSON.stringify([{ ...rec, capture: path.join(dir, sub, rec.capture) }]));
  }
  fs.writeFileSync(path.join(dir, 'manifest.csv'), 'file,host\nsmall/small-0-1.pcap,h1\nsmall/small-0-2.pcap,h2\nlarge/large-0-1.pcap,h1\n');
  const byDir = JSON.parse(run([path.join(dir, '*', '*.json'), '--dir-factors', 'size', '--json']).stdout) as SummaryJson;
  assert.deepEqual(byDir.groups.map((g) => [g.key, g.included]), [['size=large', 1], ['size=small', 2]]);
  const byManifest = JSON.parse(run([path.join(dir, '**', '*.json'), '--manifest', path.join(dir, 'manifest.csv'), '--dir-factors', 'size', '--group-by', 'host', '--json']).stdout) as SummaryJson;
  assert.deepEqual(byManifest.groups.map((g) => [g.key, g.included]), [['host=h1', 2], ['host=h2', 1]]);
  fs.rmSync(dir, { recursive: true, force: true });
});

// The real captures (3 completed migrations + 1 rejected) as one group, analysed on worker threads;
// the expected statistics come from `analyze --json` of the same files, computed here.
const realCaptures = [
  path.join(capturesDir, 'a-p2p-src2dst.pcap.gz'),
  path.join(capturesDir, 'd-p2p-tunnelled.pcap.gz'),
  path.join(capturesDir, 'f-fail-nobridge.pcap.gz'),
  path.join(sharedCapturesDir, 'g3-loaded-4M-bw12-multipass-repeat.pcap.gz'),
];
const analyzeAvailable = fs.existsSync(path.join(path.dirname(cliPath), 'analyze.js'));

test('real captures end to end: report statistics equal those computed from analyze --json', { skip: analyzeAvailable ? false : 'no analyze command in this build', timeout: 600_000 }, () => {
  const present = realCaptures.filter((f) => fs.existsSync(f));
  assert.equal(present.length, realCaptures.length, 'real captures present (fixtures/ and ../shared/captures)');
  const dir = tmpdir();
  const r = run([...present, '--jobs', '2', '--json', '--save-records', path.join(dir, 'records.json')]);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as SummaryJson;
  const analyzed = spawnSync(process.execPath, [cliPath, 'analyze', ...present, '--json'], { encoding: 'utf8', timeout: 300_000 });
  const perCapture = JSON.parse(analyzed.stdout) as { file: string; records: MigrationRecord[] }[];
  const migrations = perCapture.flatMap((c) => c.records);
  assert.equal(migrations.length, 4);
  const completed = migrations.filter((m) => m.outcome === 'completed');
  assert.equal(completed.length, 3, 'a, d and g3 completed; f was rejected by the destination');
  const [group] = summary.groups;
  assert.equal(summary.groups.length, 1);
  assert.equal(group.migrations, 4);
  assert.equal(group.included, 3);
  const check = (key: string, values: number[]) => {
    const s = group.metrics[key];
    assert.ok(s, `${key} summarized`);
    assert.equal(s.n, values.length, key);
    assert.ok(Math.abs(s.mean - mean(values)) <= 1e-12 * Math.abs(mean(values)), `${key} mean`);
    const sd = sampleStandardDeviation(values);
    assert.ok(Math.abs(s.sd - sd) <= 1e-9 * sd, `${key} sd`);
    const tDf2 = 0.95 / Math.sqrt(2 * 0.975 * 0.025); // t(0.975, 2), closed form
    assert.ok(Math.abs(s.ciHalfWidth - (tDf2 * sd) / Math.sqrt(3)) <= 1e-9 * sd, `${key} CI`);
    assert.equal(s.min, Math.min(...values));
    assert.equal(s.max, Math.max(...values));
  };
  check('migrationTime', completed.map((m) => m.migrationTimeSec as number));
  check('phase.transfer', completed.map((m) => m.phases.transfer?.seconds as number));
  check('transfer.bytes', completed.map((m) => m.transfer?.bytes as number));
  check('downtime.gap', completed.map((m) => m.downtime?.gapSec as number));
  check('downtime.lostTimesInterval', completed.map((m) => m.downtime?.lostTimesIntervalSec as number));
  const saved = JSON.parse(fs.readFileSync(path.join(dir, 'records.json'), 'utf8')) as MigrationRecord[];
  assert.equal(saved.length, 4);
  fs.rmSync(dir, { recursive: true, force: true });
});

// The lab's repeated runs (fixtures/lab/**/manifest.csv: file,mode,ram_mib,load_pct,run,...):
// one group per RAM × load, statistics checked against analyze --json of the same captures.
function findManifests(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? findManifests(full) : e.name === 'manifest.csv' ? [full] : [];
  });
}
const labManifests = findManifests(path.join(path.dirname(capturesDir), 'lab'));

test('lab repeated runs: one group per configuration, statistics equal those from analyze --json', {
  skip: !analyzeAvailable ? 'no analyze command in this build' : labManifests.length === 0 ? 'no fixtures/lab/**/manifest.csv yet (lab issue)' : false,
  timeout: 1_200_000,
}, () => {
  for (const manifest of labManifests) {
    const [header, ...rows] = fs.readFileSync(manifest, 'utf8').trim().split(/\r?\n/).map((l) => l.split(','));
    const col = (name: string) => header.indexOf(name);
    const runs = rows
      .map((r) => {
        const base = path.resolve(path.dirname(manifest), r[col('file')]);
        const file = [base, `${base}.gz`].find((f) => fs.existsSync(f));
        return { file, group: `ram_mib=${r[col('ram_mib')]}, load_pct=${r[col('load_pct')]}`, succeeded: r[col('virsh_rc')] === '0' };
      })
      .filter((r): r is { file: string; group: string; succeeded: boolean } => r.file !== undefined);
    assert.ok(runs.length >= 2, `${manifest}: captures present`);
    const report = run([...runs.map((r) => r.file), '--manifest', manifest, '--group-by', 'ram_mib,load_pct', '--json']);
    assert.ok(report.status === 0 || report.status === 3, report.stderr);
    const summary = JSON.parse(report.stdout) as SummaryJson;
    const analyzed = spawnSync(process.execPath, [cliPath, 'analyze', ...runs.map((r) => r.file), '--json'], { encoding: 'utf8', timeout: 1_000_000, maxBuffer: 1 << 28 });
    const perCapture = ([] as { file: string; records: MigrationRecord[] }[]).concat(JSON.parse(analyzed.stdout));
    for (const group of new Set(runs.map((r) => r.group))) {
      const files = new Set(runs.filter((r) => r.group === group).map((r) => r.file));
      const completed = perCapture.filter((c) => files.has(c.file)).flatMap((c) => c.records).filter((m) => m.outcome === 'completed');
      const times = completed.map((m) => m.migrationTimeSec as number);
      const g = summary.groups.find((x) => x.key === group);
      assert.ok(g, `group ${group} in the report`);
      // Ground truth from the lab: virsh returned 0 exactly for the runs counted as completed.
      assert.equal(g.included, runs.filter((r) => r.group === group && r.succeeded).length, `${group}: completed runs vs virsh rc`);
      for (const [key, values] of [['transfer.bytes', completed.map((m) => m.transfer?.bytes)], ['downtime.gap', completed.map((m) => m.downtime?.gapSec)]] as const) {
        const xs = values.filter((v): v is number => v !== undefined);
        if (xs.length === 0) continue;
        assert.equal(g.metrics[key].n, xs.length, `${group} ${key} n`);
        assert.ok(Math.abs(g.metrics[key].mean - mean(xs)) <= 1e-12 * Math.abs(mean(xs)), `${group} ${key} mean`);
      }
      const s = g.metrics.migrationTime;
      if (times.length === 0) {
        assert.equal(s, undefined, `${group}: no completed run, no statistics`);
        continue;
      }
      assert.equal(s.n, times.length, group);
      assert.ok(Math.abs(s.mean - mean(times)) <= 1e-12 * mean(times), `${group} mean`);
      if (times.length >= 2) assert.ok(Math.abs(s.sd - sampleStandardDeviation(times)) <= 1e-9 * s.sd, `${group} sd`);
    }
  }
});

test('--cache: unchanged captures are served from the cache, changed ones analysed again', { skip: analyzeAvailable ? false : 'no analyze command in this build' }, () => {
  const dir = tmpdir();
  const capture = path.join(dir, 'f.pcap.gz');
  fs.copyFileSync(path.join(capturesDir, 'f-fail-nobridge.pcap.gz'), capture);
  const cacheDir = path.join(dir, 'cache');
  const first = JSON.parse(run([capture, '--cache', cacheDir, '--json', '--include-failed']).stdout) as SummaryJson;
  assert.equal(first.groups[0].migrations, 1);
  const [entry] = fs.readdirSync(cacheDir);
  assert.ok(entry, 'one cache entry written');
  // Doctor the entry: a report that shows the doctored figure read the cache, not the capture.
  const cached = JSON.parse(fs.readFileSync(path.join(cacheDir, entry), 'utf8')) as { records: MigrationRecord[] };
  cached.records[0].migrationTimeSec = 42;
  fs.writeFileSync(path.join(cacheDir, entry), JSON.stringify(cached));
  const fromCache = JSON.parse(run([capture, '--cache', cacheDir, '--json', '--include-failed']).stdout) as SummaryJson;
  assert.equal(fromCache.groups[0].metrics.migrationTime.mean, 42);
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(capture, later, later);
  const again = JSON.parse(run([capture, '--cache', cacheDir, '--json', '--include-failed']).stdout) as SummaryJson;
  assert.equal(again.groups[0].metrics.migrationTime.mean, first.groups[0].metrics.migrationTime.mean);
  assert.equal(fs.readdirSync(cacheDir).length, 2, 'the changed capture got its own entry');
  fs.rmSync(dir, { recursive: true, force: true });
});
