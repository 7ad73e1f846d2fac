import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { ProbeTracker, type EchoEvent } from '../../../src/protocols/icmp/probes';
import { ProbeObserver } from '../../../src/protocols/icmp/observer';
import { ProbeEnricher } from '../../../src/protocols/icmp/enricher';
import { runPipeline } from '../../../src/flow/pipeline';
import { analyzeCapture } from '../../../src/migration/analyze-capture';
import { addSeconds, type Timestamp } from '../../../src/core/timestamp';
import { capturesDir, sharedCapturesDir } from '../../helpers/paths';

const BASE: Timestamp = { sec: 2000, ps: 0 };
const at = (ms: number): Timestamp => addSeconds(BASE, ms / 1000);
const PINGER = '10.0.0.3';
const VM = '10.0.0.10';

function req(ms: number, seq: number, id = 7, pinger = PINGER): EchoEvent {
  return { at: at(ms), src: pinger, dst: VM, kind: 'request', id, seq: seq & 0xffff, packet: 0 };
}
function rep(ms: number, seq: number, id = 7, pinger = PINGER): EchoEvent {
  return { at: at(ms), src: VM, dst: pinger, kind: 'reply', id, seq: seq & 0xffff, packet: 0, srcMac: '52:54:00:00:00:10' };
}

/** 1 ms pings; requests in `lost` get no reply; every reply 0.2 ms after its request. */
function pings(tracker: ProbeTracker, count: number, lost: (i: number) => boolean, opts: { firstSeq?: number; id?: number; pinger?: string } = {}): void {
  for (let i = 0; i < count; i++) {
    const seq = (opts.firstSeq ?? 1) + i;
    tracker.echo(req(i, seq, opts.id, opts.pinger));
    if (!lost(i)) tracker.echo(rep(i + 0.2, seq, opts.id, opts.pinger));
  }
}

test('lost probes × interval, reply gap and RTT over a 16-bit sequence wrap', () => {
  const t = new ProbeTracker();
  pings(t, 3000, (i) => i >= 1000 && i < 1100, { firstSeq: 65000 });
  const d = t.downtime({ start: at(500), end: at(2500) });
  assert.ok(d);
  assert.equal(d.probesSent, 2001);
  assert.equal(d.probesLost, 100);
  assert.ok(Math.abs(d.intervalMs - 1) < 1e-6);
  assert.ok(Math.abs(d.lostTimesIntervalSec - 0.1) < 1e-6);
  assert.ok(Math.abs((d.gapSec ?? 0) - 0.101) < 1e-9); // reply 999 → reply 1100
  assert.ok(Math.abs((d.rttMs?.during ?? 0) - 0.2) < 1e-6);
  assert.ok(Math.abs((d.rttMs?.before ?? 0) - 0.2) < 1e-6);
  assert.equal(d.repliesVisible, true);
  assert.equal(d.guestUnreachableAfter, undefined);
});

test('duplicates and late replies are not losses; several pingers are kept apart', () => {
  const t = new ProbeTracker();
  for (let i = 0; i < 200; i++) {
    t.echo(req(i, i, 1));
    t.echo(req(i + 0.1, i, 2, '10.0.0.4')); // a second pinger, same target, other id
  }
  for (let i = 0; i < 200; i++) {
    if (i === 50) continue;
    t.echo(rep(i + 0.3, i, 1));
    if (i % 10 === 0) t.echo(rep(i + 0.4, i, 1)); // duplicate reply
    if (i >= 100) t.echo(rep(i + 0.3, i, 2, '10.0.0.4'));
  }
  t.echo(rep(400, 50, 1)); // very late reply: answered after all
  t.echo(req(150, 150, 1)); // duplicate request
  const flows = t.probeFlows().sort((a, b) => a.id - b.id);
  assert.deepEqual(flows.map((f) => [f.id, f.requests, f.replies, f.duplicateReplies, f.duplicateRequests]), [
    [1, 200, 200, 19, 1],
    [2, 200, 100, 0, 0],
  ]);
  const pinger1 = t.downtime({ start: at(0), end: at(300) }, { target: VM });
  assert.equal(pinger1?.probesLost, 0); // chose pinger 1 (more replies), late reply counted
  const d = new ProbeTracker();
  for (let i = 0; i < 200; i++) d.echo(req(i, i, 2, '10.0.0.4'));
  for (let i = 100; i < 200; i++) d.echo(rep(i + 0.3, i, 2, '10.0.0.4'));
  assert.equal(d.downtime({ start: at(0), end: at(300) })?.probesLost, 100);
});

test('no reply ever seen: replies not visible, no bogus downtime', () => {
  const t = new ProbeTracker();
  pings(t, 500, () => true);
  const d = t.downtime({ start: at(0), end: at(500) });
  assert.ok(d);
  assert.equal(d.repliesVisible, false);
  assert.equal(d.probesLost, 0);
  assert.equal(d.lostTimesIntervalSec, 0);
  assert.equal(d.gapSec, undefined);
});

test('guest never answers again after the migration', () => {
  const t = new ProbeTracker();
  pings(t, 5000, (i) => i >= 2000);
  const d = t.downtime({ start: at(1000), end: at(3000) });
  assert.equal(d?.guestUnreachableAfter, true);
  assert.equal(d?.gapSec, undefined);
  assert.equal(d?.probesLost, 1001);
});

test('announcement: the first RARP of the target after the outage', () => {
  const t = new ProbeTracker();
  pings(t, 3000, (i) => i >= 1000 && i < 1100);
  t.announcement({ at: at(500), kind: 'rarp', mac: '52:54:00:00:00:10', packet: 1 }); // before the outage
  t.announcement({ at: at(1095), kind: 'rarp', mac: '52:54:00:00:00:99', packet: 2 }); // another guest
  t.announcement({ at: at(1098), kind: 'rarp', mac: '52:54:00:00:00:10', packet: 3 });
  const d = t.downtime({ start: at(0), end: at(3000) }, { tsDigits: 6 });
  assert.equal(d?.announcement, '2001.098000');
});

test('fast-check: any reply order, delay, duplication and sequence start gives the same losses', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffff }),
      fc.array(fc.record({ lost: fc.boolean(), delayMs: fc.double({ min: 0.05, max: 40, noNaN: true }), dup: fc.boolean() }), { minLength: 2, maxLength: 300 }),
      (firstSeq, probes) => {
        const events: EchoEvent[] = [];
        probes.forEach((p, i) => {
          events.push(req(i, firstSeq + i));
          events.push(req(i + 0.01, firstSeq + i, 9, '10.0.0.4')); // an unrelated pinger, never answered
          if (!p.lost) events.push(rep(i + p.delayMs, firstSeq + i));
          if (!p.lost && p.dup) events.push(rep(i + p.delayMs + 0.5, firstSeq + i));
        });
        // the observer sees packets in time order (replies overtake later requests)
        events.sort((a, b) => a.at.sec - b.at.sec || a.at.ps - b.at.ps);
        const t = new ProbeTracker();
        for (const e of events) t.echo(e);
        const d = t.downtime({ start: at(0), end: at(probes.length) });
        assert.ok(d);
        assert.equal(d.probeTarget, VM);
        const lost = probes.filter((p) => p.lost).length;
        const answered = probes.length - lost;
        if (answered === 0) {
          assert.equal(d.repliesVisible, false);
          return;
        }
        assert.equal(d.probesSent, probes.length);
        assert.equal(d.probesLost, lost);
        const flow = t.probeFlows().find((f) => f.id === 7);
        assert.equal(flow?.replies, answered);
        assert.equal(flow?.duplicateReplies, probes.filter((p) => !p.lost && p.dup).length);
      },
    ),
    { numRuns: 200 },
  );
});

// ---- real captures: the ping log's unanswered requests -------------------------------------

interface PingTruth {
  ping: { transmitted: number; lost: number; longest_reply_gap_s: number; unanswered_seq_count_within_range: number };
}

function replyLines(file: string): number[] {
  const text = zlib.gunzipSync(fs.readFileSync(file)).toString('utf8');
  return [...text.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map((m) => Number(m[1]));
}

const CASES = [
  { name: 'a-p2p-src2dst', dir: capturesDir, ext: '.pcap.gz' },
  { name: 'a-p2p-src2dst', dir: capturesDir, ext: '.cap.gz' },
  { name: 'd-p2p-tunnelled', dir: capturesDir, ext: '.pcap.gz' },
  { name: 'f-fail-nobridge', dir: capturesDir, ext: '.pcap.gz' },
  { name: 'g3-loaded-4M-bw12-multipass-repeat', dir: sharedCapturesDir, ext: '.pcap.gz' },
];

for (const c of CASES) {
  const capture = path.join(c.dir, c.name + c.ext);
  const skip = fs.existsSync(capture) ? false : `${capture} not present`;
  test(`${c.name}${c.ext}: lost probes = the ping log's unanswered requests`, { skip }, async () => {
    const truth = JSON.parse(fs.readFileSync(path.join(c.dir, `${c.name}.json`), 'utf8')) as PingTruth;
    const observer = new ProbeObserver();
    const result = await runPipeline(capture, { observers: [observer] });
    assert.ok(result.first && result.last);
    const d = observer.tracker.downtime({ start: result.first, end: result.last });
    assert.ok(d);
    assert.equal(d.probeTarget, '10.77.0.10');
    assert.equal(truth.ping.lost, truth.ping.unanswered_seq_count_within_range);
    assert.equal(d.probesLost, truth.ping.lost);
    // the replies the capture shows are the ping log's replies inside the capture's time span
    const first = result.first.sec + result.first.ps / 1e12;
    const last = result.last.sec + result.last.ps / 1e12;
    const expectedReplies = replyLines(path.join(c.dir, `${c.name}.ping.txt.gz`)).filter((t) => t >= first && t <= last + 0.001).length;
    const flow = observer.tracker.probeFlows().find((f) => f.target === '10.77.0.10');
    assert.ok(flow);
    assert.ok(Math.abs(flow.replies - expectedReplies) <= 1, `${flow.replies} replies, ping log ${expectedReplies}`);
    // the longest silence, measured at the capture point instead of at the pinger
    // (without an outage the longest gap is a few ms of the pinger's own scheduling jitter)
    if (truth.ping.lost > 0) assert.ok(Math.abs((d.gapSec ?? 0) - truth.ping.longest_reply_gap_s) < 0.002, `${d.gapSec} vs ${truth.ping.longest_reply_gap_s}`);
    else assert.ok((d.gapSec ?? 1) < 0.01 && truth.ping.longest_reply_gap_s < 0.01);
    assert.ok(Math.abs(d.intervalMs - 1) < 0.01);
  });
}

for (const c of CASES.filter((x) => x.ext === '.pcap.gz' && x.name !== 'f-fail-nobridge')) {
  const capture = path.join(c.dir, c.name + c.ext);
  const skip = fs.existsSync(capture) ? false : `${capture} not present`;
  test(`${c.name}: analyze puts every lost probe inside the migration, and the RARP after it`, { skip }, async () => {
    const truth = JSON.parse(fs.readFileSync(path.join(c.dir, `${c.name}.json`), 'utf8')) as PingTruth;
    const analysis = await analyzeCapture(capture, { enrichers: [new ProbeEnricher()] });
    const d = analysis.records[0].downtime;
    assert.ok(d);
    assert.equal(d.probesLost, truth.ping.lost);
    assert.ok(d.announcement, 'QEMU announces the guest on the destination');
    assert.ok(d.rttMs?.before !== undefined && d.rttMs?.after !== undefined);
    assert.equal(d.guestUnreachableAfter, undefined);
  });
}
