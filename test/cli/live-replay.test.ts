// Root-only: a real capture replayed (tcpreplay) into a veth pair inside a network namespace made
// for the test, with `migscope live` capturing (real tcpdump) on the other end.
// Compared with `analyze` of the same file: everything that does not depend on the replay's
// timing — migrations, domain, hosts, mode, outcome, the phases in order and the packet numbers of
// their markers, transfer bytes, QEMU page counts, passes, probes sent/lost, packet and libvirt
// message counts — plus zero kernel drops and zero TCP gaps. Instants and durations differ (the
// replay runs at top speed), so they are not compared with the file; the --write test compares
// them exactly with what live printed.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { LiveProcess, plainCapture, replay, replayUnavailable, VethNamespace } from '../../src/capture/live-replay';
import { readCapture } from '../../src/capture/reader';
import { ExitCode } from '../../src/core/errors';
import { compareTimestamps, parseTimestamp } from '../../src/core/timestamp';
import { analyzeCapture, type CaptureAnalysis } from '../../src/migration/analyze-capture';
import { defaultEnrichers } from '../../src/migration/enrichers';
import type { MigrationRecord } from '../../src/migration/record';
import { capturesDir, cliPath } from '../helpers/paths';

const skip = replayUnavailable() ?? false;
const fixture = path.join(capturesDir, 'a-p2p-src2dst.pcap.gz');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-live-replay-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

let ns: VethNamespace | undefined;
let expected: CaptureAnalysis;
before(async () => {
  if (skip) return;
  ns = new VethNamespace();
  expected = await analyzeCapture(fixture, { enrichers: defaultEnrichers() });
});
after(() => ns?.remove());

/** Starts live in the namespace, replays the fixture, waits for its migrations, stops (SIGINT). */
async function liveReplay(extra: string[]) {
  const live = new LiveProcess(ns!.name, ns!.rxIf, cliPath, ['--json', ...extra]);
  try {
    return await replayInto(live);
  } finally {
    await live.stop(); // also when an expectation above timed out: no capture left running
  }
}

async function replayInto(live: LiveProcess) {
  await live.waitFor((_, err) => err.includes('listening on'), 20_000);
  const sent = replay(ns!, fixture, { speed: 'topspeed' });
  await live.waitFor((out) => out.split('"type":"migration"').length - 1 >= expected.records.length, 60_000);
  const printedBeforeStop = live.stdout.split('"type":"migration"').length - 1;
  // Let the last packets (after the migration's end) reach the analyzer before stopping.
  await live.waitFor(() => live.jsonLines().some((l) => l.type === 'counters' && l.analysedPackets >= sent.packets), 60_000);
  const code = await live.stop();
  const lines = live.jsonLines();
  return { code, sent, printedBeforeStop, stderr: live.stderr, migrations: lines.filter((l) => l.type === 'migration'), summary: lines.find((l) => l.type === 'summary')! };
}

/** What a replay keeps of a record: all but instants and durations. */
function structure(r: MigrationRecord) {
  return {
    domain: r.domain, uuid: r.uuid, source: r.source, destination: r.destination, mode: r.mode, live: r.live, outcome: r.outcome, reason: r.reason,
    phases: Object.entries(r.phases).map(([name, span]) => [name, span!.startPacket, span!.endPacket]),
    transferBytes: r.transfer?.bytes,
    connection: r.transfer?.connection,
    qemu: r.qemuStream && { bytes: r.qemuStream.bytes, normalPages: r.qemuStream.normalPages, zeroPages: r.qemuStream.zeroPages, complete: r.qemuStream.complete },
    passes: r.passes?.length,
    stopAndCopyBytes: r.stopAndCopy?.bytes,
    probes: r.downtime && [r.downtime.probesSent, r.downtime.probesLost],
  };
}

test('live on a veth replay of a real migration: the same migration as analyze, no drops, no gaps', { skip }, async () => {
  const run = await liveReplay([]);
  assert.equal(run.code, ExitCode.ok, run.stderr);
  assert.equal(run.printedBeforeStop, expected.records.length, 'printed as it completed, not at the stop');
  assert.deepEqual(run.migrations.map((m) => structure(m.record)), expected.records.map(structure));
  assert.ok(run.migrations.every((m) => m.reliable && !m.partial));
  assert.equal(run.summary.packets, expected.summary.packets);
  assert.equal(run.summary.packets, run.sent.packets);
  assert.equal(run.summary.libvirtMessages, expected.summary.libvirtMessages);
  assert.equal(run.summary.kernelDrops, 0);
  assert.equal(run.summary.tcpGaps, 0);
  // Timing differs by replay: the instants are today's, the order of phases is kept.
  const phases = Object.values(run.migrations[0].record.phases as MigrationRecord['phases']);
  for (let i = 1; i < phases.length; i++) assert.ok(compareTimestamps(parseTimestamp(phases[i - 1]!.end), parseTimestamp(phases[i]!.start)) <= 0);
  assert.ok(parseTimestamp(phases[0]!.start).sec >= Math.floor(Date.now() / 1000) - 600, 'stamped by the live capture, not the file');
});

test('live --write with rotation: valid pcapng files that analyze reads back to the same migration', { skip }, async () => {
  const base = path.join(tmp, 'watch.pcapng');
  const run = await liveReplay(['--write', base, '--rotate-mb', '10']);
  assert.equal(run.code, ExitCode.ok, run.stderr);
  const files = run.summary.files as string[];
  assert.ok(files.length >= 5, `${files.length} files`); // 59 MB in 10 MB files
  assert.deepEqual(files, fs.readdirSync(tmp).filter((f) => f.startsWith('watch-')).sort().map((f) => path.join(tmp, f)));
  let packets = 0;
  for (const file of files) {
    assert.ok(fs.statSync(file).size <= 10e6);
    const summary = await readCapture(file, { packet: () => undefined });
    assert.deepEqual(summary.problems, [], file);
    assert.equal(summary.format, 'pcapng');
    packets += summary.packets;
    if (spawnSync('capinfos', ['-v'], { stdio: 'ignore' }).status === 0) assert.equal(spawnSync('capinfos', ['-c', file]).status, 0, `capinfos rejects ${file}`);
  }
  assert.equal(packets, run.summary.packets);
  // Joined in name order (as `cat watch-*.pcapng`), analyze gives exactly what live printed.
  const joined = path.join(tmp, 'joined.pcapng');
  fs.writeFileSync(joined, Buffer.concat(files.map((f) => fs.readFileSync(f))));
  const back = await analyzeCapture(joined, { enrichers: defaultEnrichers() });
  assert.deepEqual(back.problems, []);
  const comparable = (r: MigrationRecord) => {
    const copy = JSON.parse(JSON.stringify(r));
    delete copy.capture;
    if (copy.downtime?.rttMs) delete copy.downtime.rttMs.after; // analyze: median to the capture's end; live: over --settle s
    return copy;
  };
  assert.deepEqual(run.migrations.map((m) => comparable(m.record)), back.records.map(comparable));
});

test('live with the real tcpdump: a bad filter and an unknown interface are named (exit 2)', { skip }, () => {
  const filter = spawnSync(process.execPath, [cliPath, 'live', '-i', 'lo', '--filter', 'tcp port'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(filter.status, ExitCode.unreadable);
  assert.match(filter.stderr, /tcpdump rejected the filter "tcp port"/);
  const device = spawnSync(process.execPath, [cliPath, 'live', '-i', 'migscope-none0'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(device.status, ExitCode.unreadable);
  assert.match(device.stderr, /no interface "migscope-none0" \(see migscope live --list\)/);
});

test('live: frames lost by the kernel during a migration flag it unreliable (real tcpdump, analyzer stalled)', { skip }, async () => {
  // A 1 MiB ring and a 1.5 s stall of the migscope process (SIGSTOP) in the middle of the memory
  // transfer, replayed at 100 Mbit/s: tcpdump blocks on the full pipe and the kernel drops frames.
  // The lost frames may include the data connection's FIN, so the migration may only be printed
  // (as partial) at the stop: the test waits until every frame is analysed or dropped.
  const live = new LiveProcess(ns!.name, ns!.rxIf, cliPath, ['--json', '--buffer-kib', '1024', '--stats-interval', '0.2']);
  try {
    await live.waitFor((_, err) => err.includes('listening on'), 20_000);
    const argv = ns!.exec(['tcpreplay', '-i', ns!.txIf, '--mbps=100', plainCapture(fixture)]);
    const replaying = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
    const replayed = new Promise((resolve) => replaying.once('close', resolve));
    await new Promise((r) => setTimeout(r, 1500));
    live.child.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 1500));
    live.child.kill('SIGCONT');
    await replayed;
    const accounted = () => live.jsonLines().some((l) => l.type === 'counters' && l.analysedPackets + l.droppedByKernel >= expected.summary.packets);
    await live.waitFor(accounted, 60_000);
    assert.equal(await live.stop(), ExitCode.ok, live.stderr);
    const lines = live.jsonLines();
    const summary = lines.find((l) => l.type === 'summary')!;
    const migrations = lines.filter((l) => l.type === 'migration');
    assert.ok(summary.kernelDrops > 0, `kernel drops ${summary.kernelDrops}`);
    assert.equal(migrations.length, 1, live.stdout);
    assert.equal(migrations[0].reliable, false);
    assert.ok(migrations[0].record.warnings.some((w: string) => w.startsWith('unreliable: the kernel dropped')), migrations[0].record.warnings.join(' | '));
    assert.equal(summary.unreliableMigrations, 1);
  } finally {
    live.child.kill('SIGCONT');
    await live.stop();
  }
});
