// The acceptance test of `migscope live` on the lab (root + MIGSCOPE_LAB_TEST=1: it needs the two
// libvirt daemons and a TCG guest, ~1–3 min): live watches the lab switch's mirror port mon0 while
// the lab performs one real p2p migration, captured by the lab's own tcpdump on the same port.
// Both packet sockets get the kernel's timestamp of each frame, so every phase instant live
// printed must equal the one `analyze` finds in the lab's pcap, to the nanosecond; packet numbers
// differ by the frames live saw before the lab's capture started, and are compared as offsets.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { LiveProcess, replayUnavailable } from '../../src/capture/live-replay';
import { ExitCode } from '../../src/core/errors';
import { analyzeCapture } from '../../src/migration/analyze-capture';
import { defaultEnrichers } from '../../src/migration/enrichers';
import type { MigrationRecord } from '../../src/migration/record';
import { cliPath } from '../helpers/paths';

const labJs = path.resolve(__dirname, '..', '..', 'scripts', 'lab', 'lab.js');
const skip =
  process.env.MIGSCOPE_LAB_TEST !== '1'
    ? 'set MIGSCOPE_LAB_TEST=1 to run a real libvirt migration under migscope live (needs root, 1–3 min)'
    : replayUnavailable() ?? (!fs.existsSync(labJs) ? 'no lab in this build' : false);

test('live on the lab mirror port during a real migration: the phases of analyze on the lab capture, 0 drops', { skip, timeout: 900_000 }, async () => {
  const setup = spawnSync(process.execPath, [labJs, 'setup'], { encoding: 'utf8' });
  assert.equal(setup.status, 0, setup.stderr);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'live-lab-'));
  const live = new LiveProcess('mlab-sw', 'mon0', cliPath, ['--json']);
  try {
    await live.waitFor((_, err) => err.includes('listening on mon0'), 30_000);
    const run = spawnSync(process.execPath, [labJs, 'migrate', '--mode', 'p2p', '--out', out, '--name', 'live'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    await live.waitFor((o) => o.includes('"type":"migration"'), 30_000);
    assert.equal(await live.stop(), ExitCode.ok, live.stderr);
    const lines = live.jsonLines();
    const printed = lines.filter((l) => l.type === 'migration');
    const summary = lines.find((l) => l.type === 'summary')!;
    const lab = await analyzeCapture(path.join(out, 'live.pcap'), { enrichers: defaultEnrichers() });
    assert.equal(lab.records.length, 1);
    assert.equal(printed.length, 1);
    const [seen, truth] = [printed[0].record as MigrationRecord, lab.records[0]];
    assert.equal(printed[0].reliable, true, seen.warnings.join('; '));
    assert.equal(summary.kernelDrops, 0);
    assert.equal(summary.tcpGaps, 0);
    for (const key of ['outcome', 'mode', 'domain', 'uuid', 'source', 'destination', 'start', 'end', 'migrationTimeSec'] as const) assert.equal(seen[key], truth[key], key);
    assert.deepEqual(Object.keys(seen.phases), Object.keys(truth.phases));
    const offset = seen.phases.remoteConnect!.startPacket! - truth.phases.remoteConnect!.startPacket!;
    for (const [phase, span] of Object.entries(truth.phases)) {
      const got = seen.phases[phase as keyof MigrationRecord['phases']]!;
      assert.equal(got.start, span!.start, `${phase} start`);
      assert.equal(got.end, span!.end, `${phase} end`);
      assert.equal(got.seconds, span!.seconds, `${phase} seconds`);
      assert.equal(got.startPacket! - span!.startPacket!, offset, `${phase} start packet`);
    }
    assert.deepEqual(seen.transfer, truth.transfer);
    assert.deepEqual(seen.stopAndCopy, truth.stopAndCopy);
    assert.equal(seen.downtime?.gapSec, truth.downtime?.gapSec);
  } finally {
    await live.stop();
    fs.rmSync(out, { recursive: true, force: true });
  }
});
