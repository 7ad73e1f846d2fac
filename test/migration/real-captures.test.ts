// Migrations found in the real captures: phase boundaries on the marker packets (located here
// from tshark's message list and conversation table, not from migscope), migration time vs the
// hypervisor's own clock, outcome and reason of the failed migration.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { readCapture } from '../../src/capture/reader';
import { encodePcap, type FrameToWrite } from '../../src/capture/writer';
import { formatTimestamp, parseTimestamp, secondsBetween } from '../../src/core/timestamp';
import { analyzeCapture } from '../../src/migration/analyze-capture';
import type { MigrationRecord } from '../../src/migration/record';
import { captureFile, jobCompletedField, readConvTcp, readGroundTruth, readTsharkLibvirt, wallClockNs, type TsharkMessage } from '../protocols/libvirt/oracle-files';

const CALL = 0;
const REPLY = 1;

function one(messages: TsharkMessage[], procedure: number, type: number, which: 'first' | 'last' = 'first'): TsharkMessage {
  const hits = messages.filter((m) => m.procedure === procedure && m.type === type && m.program === 0x20008086);
  assert.ok(hits.length > 0, `tshark lists procedure ${procedure} type ${type}`);
  return which === 'first' ? hits[0] : hits[hits.length - 1];
}

/** Instant of a migscope phase edge equals a tshark row (time and frame). */
function assertOn(record: MigrationRecord, phase: keyof MigrationRecord['phases'], edge: 'start' | 'end', m: TsharkMessage): void {
  const span = record.phases[phase];
  assert.ok(span, `phase ${phase} present`);
  assert.equal(span[edge], m.epoch, `${phase} ${edge} time`);
  assert.equal(edge === 'start' ? span.startPacket : span.endPacket, m.frame, `${phase} ${edge} packet`);
}

/** The wire's view of the libvirt job: remote connect start → FINISH reply; the source's
 *  job-completed time_elapsed (integer ms) covers it plus work before the connect and after the
 *  reply (README: 0 … 10 ms more). */
function assertJobClock(record: MigrationRecord, name: string): void {
  const truth = readGroundTruth(captureFile(name, 'json')!);
  const elapsedMs = jobCompletedField(truth, 'time_elapsed');
  assert.ok(elapsedMs !== undefined);
  const wireMs = secondsBetween(parseTimestamp(record.start), parseTimestamp(record.phases.finish!.end)) * 1000;
  const difference = elapsedMs - wireMs;
  assert.ok(difference > -1 && difference < 10, `job clock ${elapsedMs} ms vs wire ${wireMs.toFixed(3)} ms`);
  // The whole migration time (through cleanup) lies inside the virsh command's wall-clock span.
  const virshStart = parseTimestamp(wallClockNs(captureFile(name, 'json')!, 'start_wall_ns').replace(/(\d{9})$/, '.$1'));
  const virshEnd = parseTimestamp(wallClockNs(captureFile(name, 'json')!, 'end_wall_ns').replace(/(\d{9})$/, '.$1'));
  assert.ok(secondsBetween(virshStart, parseTimestamp(record.start)) > 0, 'migration starts after virsh started');
  assert.ok(secondsBetween(parseTimestamp(record.end!), virshEnd) > 0, 'migration ends before virsh returned');
  assert.ok(record.migrationTimeSec! < truth.virsh_wall_ms / 1000);
}

for (const name of ['a-p2p-src2dst', 'g3-loaded-4M-bw12-multipass-repeat']) {
  const pcap = captureFile(name, 'pcap.gz');
  test(`${name}: one completed p2p migration, phases on the marker packets`, { skip: pcap ? false : `${name} not found` }, async () => {
    const analysis = await analyzeCapture(pcap!);
    assert.equal(analysis.records.length, 1);
    const r = analysis.records[0];
    assert.equal(r.outcome, 'completed');
    assert.equal(r.mode, 'p2p');
    assert.equal(r.live, true);
    assert.equal(r.domain, 'vm');
    assert.equal(r.source, '10.77.0.1');
    assert.equal(r.destination, '10.77.0.2');
    assert.equal(r.transfer?.migrateUri, 'tcp:10.77.0.2:49152');

    const tsv = readTsharkLibvirt(captureFile(name, 'tshark-libvirt.tsv')!);
    assertOn(r, 'remoteConnect', 'end', one(tsv, 1, REPLY));
    assertOn(r, 'preparation', 'start', one(tsv, 1, REPLY));
    assertOn(r, 'preparation', 'end', one(tsv, 303, REPLY));
    assertOn(r, 'finish', 'start', one(tsv, 306, CALL));
    assertOn(r, 'finish', 'end', one(tsv, 306, REPLY));
    assertOn(r, 'cleanup', 'start', one(tsv, 306, REPLY));
    assertOn(r, 'cleanup', 'end', one(tsv, 2, REPLY, 'last'));

    // SYN of the control connection and the data connection's span: tshark's conversation table
    // (relative to the first packet; 9 digits for the start, 4 for the duration).
    const conv = readConvTcp(captureFile(name, 'conv-tcp.txt')!);
    const first = parseTimestamp(analysis.summary.first!);
    const control = conv.find((c) => c.b.endsWith(':16509'))!;
    const data = conv.find((c) => c.b.endsWith(':49152'))!;
    assert.equal(secondsBetween(first, parseTimestamp(r.phases.remoteConnect!.start)).toFixed(9), control.relativeStart.toFixed(9));
    assert.equal(secondsBetween(first, parseTimestamp(r.phases.transfer!.start)).toFixed(9), data.relativeStart.toFixed(9));
    assert.ok(Math.abs(r.phases.transfer!.seconds - data.duration) <= 0.00006, `transfer ${r.phases.transfer!.seconds} vs conversation ${data.duration}`);
    assert.equal(r.transfer?.connection, `${data.a} → ${data.b}`);

    // Phases tile the migration in order; migration time = remote connect start → cleanup end.
    assert.equal(r.start, r.phases.remoteConnect!.start);
    assert.equal(r.end, r.phases.cleanup!.end);
    assert.equal(r.phases.remoteConnect!.end, r.phases.preparation!.start);
    assert.ok(r.migrationTimeSec! > r.phases.transfer!.seconds);
    assertJobClock(r, name);

    // Bytes on the data connection ≥ the memory QEMU reports sent (the stream adds page headers).
    const truth = readGroundTruth(captureFile(name, 'json')!);
    const processed = jobCompletedField(truth, 'data_processed')!;
    assert.ok(r.transfer!.bytes >= processed && r.transfer!.bytes < processed * 1.01, `${r.transfer!.bytes} vs data_processed ${processed}`);
  });
}

test('d-p2p-tunnelled: tunnelled mode, transfer = the STREAM messages, job clock agrees', async () => {
  const name = 'd-p2p-tunnelled';
  const analysis = await analyzeCapture(captureFile(name, 'pcap.gz')!, { messages: true });
  assert.equal(analysis.records.length, 1);
  const r = analysis.records[0];
  assert.equal(r.mode, 'tunnelled');
  assert.equal(r.outcome, 'completed');
  const tsv = readTsharkLibvirt(captureFile(name, 'tshark-libvirt.tsv')!);
  assertOn(r, 'preparation', 'end', one(tsv, 304, REPLY));
  // tshark lost track before FINISH: locate the transfer's end marker in our own list, by rule:
  // the source's closing STREAM OK message of the tunnel serial.
  const rows = analysis.libvirtMessages!;
  const streamEnd = rows.find((x) => x.message.type === 3 && x.message.status === 0 && x.src === '10.77.0.1')!;
  assert.equal(r.phases.transfer!.end, formatTimestamp(streamEnd.message.at, 9));
  const firstStream = rows.find((x) => x.message.type === 3)!;
  assert.ok(secondsBetween(parseTimestamp(r.phases.transfer!.start), firstStream.message.at) >= 0, 'transfer starts with the first STREAM message');
  assert.equal(r.phases.transfer!.startPacket, firstStream.message.firstPacket);
  assertJobClock(r, name);
});

test('f-fail-nobridge: failed in preparation with the destination\'s error message', async () => {
  const name = 'f-fail-nobridge';
  const analysis = await analyzeCapture(captureFile(name, 'pcap.gz')!);
  assert.equal(analysis.records.length, 1);
  const r = analysis.records[0];
  const truth = readGroundTruth(captureFile(name, 'json')!);
  assert.equal(truth.virsh_rc, 1);
  assert.equal(r.outcome, 'failed');
  const message = /error: (.*)/.exec(truth.virsh_output)![1];
  assert.ok(r.reason?.includes(message), `reason ${r.reason} carries virsh's "${message}"`);
  assert.deepEqual(Object.keys(r.phases), ['remoteConnect', 'preparation', 'cleanup'], 'phases reached');
  const tsv = readTsharkLibvirt(captureFile(name, 'tshark-libvirt.tsv')!);
  const errorReply = one(tsv, 303, REPLY);
  assert.equal(errorReply.status, 1);
  assertOn(r, 'preparation', 'end', errorReply);
  assertOn(r, 'cleanup', 'end', one(tsv, 2, REPLY));
  assert.equal(r.transfer, undefined);
});

test('DPMI twin of a-p2p-src2dst: the same migration at the trace\'s microsecond timestamps', { skip: captureFile('a-p2p-src2dst', 'cap.gz') ? false : 'no .cap.gz' }, async () => {
  const pcap = (await analyzeCapture(captureFile('a-p2p-src2dst', 'pcap.gz')!)).records[0];
  const dpmi = await analyzeCapture(captureFile('a-p2p-src2dst', 'cap.gz')!);
  assert.equal(dpmi.records.length, 1);
  const r = dpmi.records[0];
  assert.equal(r.outcome, 'completed');
  // pcap2cap truncated the ns timestamps to µs: every phase edge is the pcap's, truncated.
  const micro = (s: string) => s.slice(0, s.indexOf('.') + 7);
  for (const [phase, span] of Object.entries(pcap.phases)) {
    const other = r.phases[phase as keyof typeof r.phases]!;
    assert.equal(micro(other.start), micro(span.start), `${phase} start`);
    assert.equal(micro(other.end), micro(span.end), `${phase} end`);
    assert.equal(other.startPacket, span.startPacket);
  }
});

test('a capture that starts in the middle of the transfer still reports the migration (anchored on FINISH)', async () => {
  const source = captureFile('a-p2p-src2dst', 'pcap.gz')!;
  const whole = (await analyzeCapture(source, { enrichers: [] })).records[0];
  const frames: FrameToWrite[] = [];
  let index = 0;
  await readCapture(source, {
    packet: (r) => {
      // keep everything from the middle of the data transfer on (packet 5000 of 3796…43673)
      if (++index >= 5000) frames.push({ sec: r.sec, ps: r.ps, data: r.buf.slice(r.offset, r.offset + r.caplen), wirelen: r.wirelen });
    },
  });
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-late-')), 'late.pcap');
  fs.writeFileSync(file, encodePcap(frames, { nanosecond: true }));
  const analysis = await analyzeCapture(file, { enrichers: [] });
  assert.equal(analysis.records.length, 1);
  const r = analysis.records[0];
  assert.equal(r.outcome, 'completed');
  assert.equal(r.domain, 'vm');
  assert.deepEqual([r.source, r.destination], ['10.77.0.1', '10.77.0.2']);
  assert.deepEqual(Object.keys(r.phases), ['transfer', 'finish', 'cleanup']);
  assert.equal(r.migrationTimeSec, undefined, 'not measurable without the start');
  assert.ok(r.warnings.some((w) => w.includes('starts after the PREPARE')));
  // packet numbers shift by the 4999 dropped packets; instants are the same
  assert.equal(r.phases.finish!.start, whole.phases.finish!.start);
  assert.equal(r.phases.finish!.end, whole.phases.finish!.end);
  assert.equal(r.phases.cleanup!.end, whole.phases.cleanup!.end);
  assert.equal(r.phases.transfer!.end, whole.phases.transfer!.end);
  assert.equal(r.phases.transfer!.endPacket, whole.phases.transfer!.endPacket! - 4999);
  assert.equal(r.transfer?.migrateUri, 'tcp:10.77.0.2:49152');
});
