// The lab's ground-truth parsers, checked against the previous lab's captures in
// ../shared/captures, whose JSON was produced independently from the same raw files.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { sharedCapturesDir } from '../helpers/paths';
import {
  extractPhaseLines,
  jobFiguresFromDomjobinfo,
  jobFiguresFromEvent,
  libvirtTimeToEpochMs,
  parseDomjobinfo,
  parsePingLog,
  parseVirshEvents,
  toRanges,
} from '../../scripts/lab/ground-truth';

const names = ['a-p2p-src2dst', 'd-p2p-tunnelled', 'f-fail-nobridge', 'g3-loaded-4M-bw12-multipass-repeat'];
const shared = (f: string) => path.join(sharedCapturesDir, f);
const missing = !fs.existsSync(shared('a-p2p-src2dst.json')) ? `shared captures not found at ${sharedCapturesDir}` : undefined;
const truthOf = (n: string) => JSON.parse(fs.readFileSync(shared(`${n}.json`), 'utf8'));
const gunzipText = (f: string) => zlib.gunzipSync(fs.readFileSync(f)).toString('utf8');

for (const name of names) {
  test(`ping log summary matches the study lab's JSON: ${name}`, { skip: missing }, () => {
    const truth = truthOf(name).ping;
    const got = parsePingLog(gunzipText(shared(`${name}.ping.txt.gz`)));
    assert.equal(got.transmitted, truth.transmitted);
    assert.equal(got.received, truth.received);
    assert.equal(got.lost, truth.lost);
    assert.equal(got.no_answer_yet_lines, truth.no_answer_yet_lines);
    assert.equal(got.first_reply_epoch, truth.first_reply_epoch);
    assert.equal(got.last_reply_epoch, truth.last_reply_epoch);
    assert.ok(Math.abs(got.longest_reply_gap_s - truth.longest_reply_gap_s) < 1e-6, `${got.longest_reply_gap_s} vs ${truth.longest_reply_gap_s}`);
    if (truth.longest_gap_from) assert.deepEqual(got.longest_gap_from, truth.longest_gap_from);
    assert.deepEqual(got.unanswered_seq_ranges, truth.unanswered_seq_ranges);
    assert.equal(got.unanswered_seqs.length, truth.unanswered_seq_count_within_range ?? 0);
  });

  test(`domjobinfo parse matches the study lab's JSON: ${name}`, { skip: missing }, () => {
    const truth = truthOf(name);
    const got = parseDomjobinfo(fs.readFileSync(shared(`${name}.domjobinfo-dst.txt`), 'utf8'));
    const norm = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v.replace(/\s+/g, ' ').trim()]));
    assert.deepEqual(got, norm(truth.domjobinfo_completed_dst));
  });
}

test('job-completed event fields and figures (a-p2p-src2dst)', { skip: missing }, () => {
  const events = parseVirshEvents(fs.readFileSync(shared('a-p2p-src2dst.events-src.txt'), 'utf8'));
  assert.deepEqual(
    events.map((e) => e.event),
    ['migration-iteration', 'migration-iteration', 'lifecycle', 'migration-iteration', 'lifecycle', 'job-completed'],
  );
  const done = events[5];
  // The study JSON flattens the same event into one line: every field must be there with its value.
  const line: string = truthOf('a-p2p-src2dst').events_src[5];
  for (const [k, v] of Object.entries(done.fields ?? {})) assert.ok(line.includes(`| ${k}: ${v}`), `${k}: ${v}`);
  assert.equal(Object.keys(done.fields ?? {}).length, line.split('|').length - 1);
  const figures = jobFiguresFromEvent(done.fields ?? {});
  assert.deepEqual(figures, {
    timeElapsedMs: 688, downtimeMs: 130, setupTimeMs: 0, dataProcessedBytes: 53925681, dataTotalBytes: 135012352,
    memoryBandwidthBytesPerS: 187803045, dirtyRatePagesPerS: 0, iterations: 3, postcopyRequests: 0,
  });
  assert.equal(done.epochMs, Date.UTC(2026, 10, 22, 23, 24, 56, 649));
});

test('domjobinfo figures convert MiB and ms (a-p2p-src2dst)', { skip: missing }, () => {
  const f = jobFiguresFromDomjobinfo(parseDomjobinfo(fs.readFileSync(shared('a-p2p-src2dst.domjobinfo-dst.txt'), 'utf8')));
  assert.equal(f.timeElapsedMs, 674);
  assert.equal(f.downtimeMs, 130);
  assert.equal(f.iterations, 3);
  // 51.428 MiB printed with 3 decimals: within half a KiB of the event's exact 53925681 B.
  assert.ok(Math.abs((f.dataProcessedBytes ?? 0) - 53925681) <= 1024 * 1.024 / 2 + 1);
});

test('phase log lines of the study p2p run come in protocol order', { skip: missing }, () => {
  const src = extractPhaseLines(gunzipText(shared('a-p2p-src2dst.libvirtd-src.log.gz')), 'src');
  const dst = extractPhaseLines(gunzipText(shared('a-p2p-src2dst.libvirtd-dst.log.gz')), 'dst');
  const first = (lines: typeof src, marker: string) => lines.find((l) => l.marker === marker)?.epochMs ?? NaN;
  const order = [
    first(src, 'perform-call-received'),
    first(src, 'prepare-call-sent'),
    first(dst, 'prepare-call-received'),
    first(src, 'perform-call-sent'),
    first(src, 'qmp-migrate'),
    first(src, 'guest-stopped'),
    first(src, 'finish-call-sent'),
    first(dst, 'finish-phase'),
    first(src, 'confirm-phase'),
  ];
  for (const t of order) assert.ok(Number.isFinite(t));
  for (let i = 1; i < order.length; i++) assert.ok(order[i] >= order[i - 1], `marker ${i} before marker ${i - 1}`);
  // Migration status changes as QEMU reports them; iterations as the events count them (3).
  assert.deepEqual(src.filter((l) => l.marker === 'migration-status').map((l) => l.value), ['setup', 'active', 'pre-switchover', 'device', 'completed']);
  assert.deepEqual(src.filter((l) => l.marker === 'migration-iteration').map((l) => l.value), ['1', '2', '3']);
  // STOP is logged when the source pauses the guest: the downtime starts there.
  assert.equal(src.find((l) => l.marker === 'guest-stopped')?.at, '2026-11-22 23:24:54.502+0000');
  const fail = extractPhaseLines(gunzipText(shared('f-fail-nobridge.libvirtd-dst.log.gz')), 'dst');
  assert.ok(fail.some((l) => l.phase === 'error' && l.line.includes('nobr0')));
});

test('libvirt timestamps and ranges', () => {
  assert.equal(libvirtTimeToEpochMs('2026-11-22 23:24:54.336+0000'), Date.UTC(2026, 10, 22, 23, 24, 54, 336));
  assert.equal(libvirtTimeToEpochMs('2026-11-23 00:24:54.336+0100'), Date.UTC(2026, 10, 22, 23, 24, 54, 336));
  assert.ok(Number.isNaN(libvirtTimeToEpochMs('yesterday')));
  assert.deepEqual(toRanges([1, 2, 3, 7, 9, 10]), [[1, 3], [7, 7], [9, 10]]);
  assert.deepEqual(toRanges([]), []);
});

test('ping log: duplicates and the in-flight tail are not counted as outage', () => {
  const log = [
    'PING 10.77.0.10 (10.77.0.10) 56(84) bytes of data.',
    '[1.000000] 64 bytes from 10.77.0.10: icmp_seq=1 ttl=64 time=0.1 ms',
    '[1.003000] no answer yet for icmp_seq=2',
    '[1.010000] 64 bytes from 10.77.0.10: icmp_seq=3 ttl=64 time=0.1 ms',
    '[1.010100] 64 bytes from 10.77.0.10: icmp_seq=3 ttl=64 time=0.2 ms (DUP!)',
    '',
    '--- 10.77.0.10 ping statistics ---',
    '5 packets transmitted, 2 received, +1 duplicates, 60% packet loss, time 4ms',
  ].join('\n');
  const p = parsePingLog(log);
  assert.equal(p.transmitted, 5);
  assert.equal(p.received, 2);
  assert.equal(p.duplicates, 1);
  assert.deepEqual(p.unanswered_seqs, [2]);
  assert.equal(p.unanswered_tail, 2);
  assert.equal(p.no_answer_yet_lines, 1);
  assert.ok(Math.abs(p.longest_reply_gap_s - 0.01) < 1e-9);
});
