// The lab's real captures, one per migration mode (fixtures/lab/modes, ground truth schema in
// scripts/lab/README.md): messages equal tshark's, mode / direction / outcome equal what the lab
// did, phase edges sit on the marker rows of tshark's list, the job clock agrees.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { formatTimestamp, parseTimestamp, secondsBetween } from '../../src/core/timestamp';
import { analyzeCapture } from '../../src/migration/analyze-capture';
import type { MigrationRecord, PhaseName } from '../../src/migration/record';
import { fixture } from '../helpers/paths';
import { readConvTcp, readTsharkLibvirt, type TsharkMessage } from '../protocols/libvirt/oracle-files';

const dir = fixture('lab', 'modes');
const runs = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.pcap.gz')).map((f) => f.replace('.pcap.gz', '')) : [];

interface LabTruth {
  mode: string;
  direction: 'src->dst' | 'dst->src';
  virsh_rc: number;
  start_wall_ns: number;
  end_wall_ns: number;
  job_figures?: { job_completed_event?: { timeElapsedMs?: number } };
}

const PREPARES = new Set([303, 304, 214, 215, 108, 148, 61]);
const sameConnection = (a: TsharkMessage, b: TsharkMessage) =>
  (a.src === b.src && a.srcPort === b.srcPort && a.dst === b.dst && a.dstPort === b.dstPort) || (a.src === b.dst && a.srcPort === b.dstPort && a.dst === b.src && a.dstPort === b.srcPort);

const expectedMode: Record<string, MigrationRecord['mode']> = { p2p: 'p2p', back: 'p2p', offline: 'p2p', postcopy: 'p2p', managed: 'managed', tunnelled: 'tunnelled', fail: 'p2p', cancel: 'p2p' };

function edge(r: MigrationRecord, phase: PhaseName, which: 'start' | 'end'): { at: string; packet?: number } {
  const span = r.phases[phase];
  assert.ok(span, `${phase} present`);
  return which === 'start' ? { at: span.start, packet: span.startPacket } : { at: span.end, packet: span.endPacket };
}

for (const run of runs) {
  test(`lab ${run}: messages, mode, direction, outcome, phase edges, job clock`, async () => {
    const truth = JSON.parse(fs.readFileSync(path.join(dir, `${run}.json`), 'utf8')) as LabTruth;
    const analysis = await analyzeCapture(path.join(dir, `${run}.pcap.gz`), { messages: true, enrichers: [] });
    const oracle = readTsharkLibvirt(path.join(dir, `${run}.tshark-libvirt.tsv`));
    const ours: TsharkMessage[] = analysis.libvirtMessages!.map(({ message: m, src, srcPort, dst, dstPort }) => ({
      frame: m.packet, epoch: formatTimestamp(m.at, 9), src, srcPort, dst, dstPort, program: m.program, version: m.version,
      procedure: m.procedure, type: m.type, serial: m.serial, status: m.status, length: m.length,
    }));
    const tunnelled = truth.mode === 'tunnelled';
    if (tunnelled) {
      const keys = new Set(ours.map((m) => JSON.stringify(m)));
      assert.deepEqual(oracle.filter((m) => !keys.has(JSON.stringify(m))), [], 'superset of tshark');
    } else {
      assert.deepEqual(ours, oracle, 'message for message');
    }

    assert.equal(analysis.records.length, 1);
    const r = analysis.records[0];
    assert.equal(r.mode, expectedMode[truth.mode]);
    const [src, dst] = truth.direction === 'src->dst' ? ['10.77.0.1', '10.77.0.2'] : ['10.77.0.2', '10.77.0.1'];
    assert.deepEqual([r.source, r.destination], [src, dst]);
    assert.equal(r.outcome, truth.virsh_rc === 0 ? 'completed' : truth.mode === 'cancel' ? 'cancelled' : 'failed');
    if (truth.mode === 'offline') assert.equal(r.live, false);
    else assert.equal(r.live, true);
    assert.equal(r.postcopy, truth.mode === 'postcopy');

    // Marker rows located in tshark's list: the PREPARE call's connection is the control connection.
    const prepare = oracle.find((m) => PREPARES.has(m.procedure) && m.type === 0)!;
    const onControl = oracle.filter((m) => sameConnection(m, prepare));
    const row = (procedure: number, type: number) => onControl.find((m) => m.procedure === procedure && m.type === type)!;
    const at = (m: TsharkMessage) => ({ at: m.epoch, packet: m.frame });
    assert.deepEqual(edge(r, 'remoteConnect', 'end'), at(row(1, 1)));
    assert.deepEqual(edge(r, 'preparation', 'end'), at(onControl.find((m) => m.serial === prepare.serial && m.type === 1)!));
    if (!tunnelled && truth.mode !== 'fail') {
      assert.deepEqual(edge(r, 'finish', 'start'), at(row(306, 0)));
      assert.deepEqual(edge(r, 'finish', 'end'), at(row(306, 1)));
    }
    if (!tunnelled) {
      const closes = oracle.filter((m) => m.procedure === 2 && m.type === 1);
      assert.deepEqual(edge(r, 'cleanup', 'end'), at(closes[closes.length - 1]), 'last CONNECT_CLOSE reply');
    }

    // Data connection span = tshark's conversation table (start to 1 ns, duration to 10⁻⁴ s).
    const data = readConvTcp(path.join(dir, `${run}.conv-tcp.txt`)).find((c) => /:(49\d{3})$/.test(c.b) && !c.b.endsWith(':16509'));
    if (data && !tunnelled) {
      const first = parseTimestamp(analysis.summary.first!);
      assert.equal(secondsBetween(first, parseTimestamp(r.phases.transfer!.start)).toFixed(9), data.relativeStart.toFixed(9));
      // ours ends at the closing FIN/RST; tshark's at the last packet (the final ACK follows it)
      const lag = data.duration - r.phases.transfer!.seconds;
      assert.ok(lag >= -0.00005 && lag <= 0.0005, `transfer ${r.phases.transfer!.seconds} vs ${data.duration}`);
    }

    // Inside the virsh command's wall-clock span (same host clock as the capture).
    const ns = (s: string) => BigInt(s.replace('.', ''));
    assert.ok(ns(r.start) > BigInt(truth.start_wall_ns) && ns(r.end!) < BigInt(truth.end_wall_ns));
    // Job clock (source job-completed time_elapsed) vs the wire's connect → FINISH reply:
    // −5 ms … 10 ms + 1 % (src/migration/README.md).
    const elapsedMs = truth.job_figures?.job_completed_event?.timeElapsedMs;
    if (truth.virsh_rc === 0 && elapsedMs !== undefined) {
      const wireMs = secondsBetween(parseTimestamp(r.start), parseTimestamp(r.phases.finish!.end)) * 1000;
      const difference = elapsedMs - wireMs;
      assert.ok(difference > -5 && difference < 10 + elapsedMs / 100, `job ${elapsedMs} ms vs wire ${wireMs.toFixed(1)} ms`);
    }
  });
}

test('lab fixtures present', { skip: runs.length > 0 ? false : 'fixtures/lab/modes not there' }, () => {
  assert.ok(runs.length >= 8);
});
