// `migscope live` end to end without root: a stand-in for tcpdump (a shell script that writes a
// real capture to stdout and answers SIGUSR1/SIGINT with tcpdump's own counter lines) feeds the
// real CLI, whose records must equal `analyze` of the same file exactly — the one code path.
// Also: argument errors, the missing-tcpdump and permission errors (the real one via setpriv).
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import { readCapture } from '../../src/capture/reader';
import { validateLiveArgs } from '../../src/cli/live';
import { ExitCode } from '../../src/core/errors';
import { analyzeCapture } from '../../src/migration/analyze-capture';
import { defaultEnrichers } from '../../src/migration/enrichers';
import type { MigrationRecord } from '../../src/migration/record';
import { capturesDir, cliPath } from '../helpers/paths';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-live-cli-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Behaves like `tcpdump -w - …` for our purposes: the listening line, the capture, counter lines. */
const fakeTcpdump = path.join(tmp, 'fake-tcpdump');
fs.writeFileSync(
  fakeTcpdump,
  `#!/bin/sh
drops=\${FAKE_DROPS:-0}
trap 'echo "tcpdump: 10 packets captured, 10 packets received by filter, $drops packets dropped by kernel" >&2' USR1
trap 'printf "10 packets captured\\n10 packets received by filter\\n%s packets dropped by kernel\\n" "$drops" >&2; exit 0' INT TERM
echo "tcpdump: listening on $2, link-type EN10MB (Ethernet), snapshot length 262144 bytes" >&2
cat "$FAKE_CAPTURE"
while :; do sleep 0.05; done
`,
  { mode: 0o755 },
);

function plain(name: string): string {
  const out = path.join(tmp, name.replace(/\.gz$/, ''));
  if (!fs.existsSync(out)) fs.writeFileSync(out, zlib.gunzipSync(fs.readFileSync(path.join(capturesDir, name))));
  return out;
}

interface LiveRun { code: number | null; stdout: string; stderr: string; lines: Record<string, any>[]; sawBeforeStop: string }

/** Runs `migscope live --json` on the fake; stops it with SIGINT once `ready(stdout)` holds. */
async function runLive(capture: string, extra: string[], ready: (stdout: string) => boolean, env: Record<string, string> = {}, json = true): Promise<LiveRun> {
  const child = spawn(process.execPath, [cliPath, 'live', '-i', 'fake0', '--tcpdump', fakeTcpdump, ...(json ? ['--json'] : []), '--stats-interval', '0.2', ...extra], {
    env: { ...process.env, FAKE_CAPTURE: capture, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  const deadline = Date.now() + 60_000;
  while (!ready(stdout) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const sawBeforeStop = stdout;
  child.kill('SIGINT');
  const code = await exited;
  const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  return { code, stdout, stderr, lines, sawBeforeStop };
}

/** A record as printed (JSON), minus what live cannot know when it prints: the capture name, and
 *  the probe RTT *after* the migration — analyze takes the median over every probe up to the end
 *  of the capture, live over the --settle seconds after the migration's end. */
function comparable(r: MigrationRecord): unknown {
  const copy = JSON.parse(JSON.stringify(r));
  delete copy.capture;
  if (copy.downtime?.rttMs) delete copy.downtime.rttMs.after;
  return copy;
}

for (const name of ['a-p2p-src2dst.pcap.gz', 'f-fail-nobridge.pcap.gz']) {
  test(`live on ${name}: each migration printed before the stop, equal to analyze's record`, async () => {
    const file = plain(name);
    const expected = await analyzeCapture(file, { enrichers: defaultEnrichers() });
    assert.ok(expected.records.length > 0);
    const run = await runLive(file, [], (out) => out.split('"type":"migration"').length - 1 >= expected.records.length);
    assert.equal(run.code, ExitCode.ok, run.stderr);
    assert.equal(run.sawBeforeStop.split('"type":"migration"').length - 1, expected.records.length, 'printed while still capturing');
    const migrations = run.lines.filter((l) => l.type === 'migration');
    assert.deepEqual(migrations.map((m) => comparable(m.record as MigrationRecord)), expected.records.map(comparable));
    assert.ok(migrations.every((m) => m.reliable === true && m.partial === false));
    assert.equal(migrations[0].record.capture, 'live:fake0');
    const summary = run.lines.find((l) => l.type === 'summary')!;
    assert.equal(summary.packets, expected.summary.packets);
    assert.equal(summary.libvirtMessages, expected.summary.libvirtMessages);
    assert.equal(summary.kernelDrops, 0);
    assert.equal(summary.tcpGaps, 0);
    assert.ok(run.lines.some((l) => l.type === 'counters'), 'heartbeat lines while capturing');
    assert.match(run.stderr, /listening on fake0, link type EN10MB/);
  });
}

test('live: kernel drops during a migration flag it unreliable', async () => {
  const run = await runLive(plain('f-fail-nobridge.pcap.gz'), [], (out) => out.includes('"type":"migration"'), { FAKE_DROPS: '7' });
  assert.equal(run.code, ExitCode.ok, run.stderr);
  const migration = run.lines.find((l) => l.type === 'migration')!;
  assert.equal(migration.reliable, false);
  assert.ok(migration.record.warnings.some((w: string) => /unreliable: the kernel dropped 7 packet\(s\)/.test(w)), migration.record.warnings.join('; '));
  assert.equal(run.lines.find((l) => l.type === 'summary')!.unreliableMigrations, 1);
});

test('live: Ctrl-C in the middle of a migration prints it as partial, writes a valid file, exits 0', async () => {
  // The real capture cut at a packet boundary in the middle of the memory transfer.
  const full = plain('a-p2p-src2dst.pcap.gz');
  let cut = 0;
  await readCapture(full, { packet: (r) => { if (r.index === 20_000) cut = r.fileOffset; } });
  const half = path.join(tmp, 'half.pcap');
  fs.writeFileSync(half, fs.readFileSync(full).subarray(0, cut));
  const written = path.join(tmp, 'half-written.pcapng');
  const run = await runLive(half, ['--write', written], (out) => out.includes('"type":"counters","analysedPackets":19999'));
  assert.equal(run.code, ExitCode.ok, run.stderr);
  assert.ok(!run.sawBeforeStop.includes('"type":"migration"'), 'nothing printed before the stop');
  const migration = run.lines.find((l) => l.type === 'migration')!;
  assert.equal(migration.partial, true);
  assert.equal(migration.record.outcome, 'incomplete');
  assert.ok(migration.record.warnings.includes('partial: the capture stopped before this migration ended'));
  assert.deepEqual(Object.keys(migration.record.phases).slice(0, 2), ['remoteConnect', 'preparation']);
  // The file written on the way holds the same packets, and analyze finds the same partial migration.
  const back = await analyzeCapture(written, { enrichers: defaultEnrichers() });
  assert.deepEqual(back.problems, []);
  assert.equal(back.summary.packets, 19_999);
  assert.deepEqual(JSON.parse(JSON.stringify(back.records.map((r) => r.phases))), [migration.record.phases]);
});

test('live: the text output is analyze\'s phase table', async () => {
  const file = plain('f-fail-nobridge.pcap.gz');
  const run = await runLive(file, [], (out) => out.includes('migration 1:'), {}, false);
  assert.equal(run.code, 0, run.stderr);
  const analyzed = spawnSync(process.execPath, [cliPath, 'analyze', file], { encoding: 'utf8' });
  const table = (text: string) => text.slice(text.indexOf('migration 1:')).trim();
  assert.ok(table(run.stdout).length > 200);
  assert.equal(table(run.stdout), table(analyzed.stdout));
  assert.match(run.stderr, /kernel drops 0, TCP gaps 0/);
});

test('live: argument errors exit 1 with a message', () => {
  assert.match(validateLiveArgs({})!, /-i <interface>/);
  assert.equal(validateLiveArgs({ list: true }), undefined);
  assert.equal(validateLiveArgs({ interface: 'eth0' }), undefined);
  assert.match(validateLiveArgs({ interface: 'eth0', rotateMb: 10 })!, /need --write/);
  assert.match(validateLiveArgs({ interface: 'eth0', write: 'w.pcapng', rotateFiles: 3 })!, /needs --rotate-mb/);
  assert.match(validateLiveArgs({ interface: 'eth0', write: 'w.pcapng', rotateMb: 0 })!, /positive/);
  assert.match(validateLiveArgs({ interface: 'eth0', write: 'w.pcapng', rotateMb: 5, rotateFiles: 1.5 })!, /whole number/);
  const r = spawnSync(process.execPath, [cliPath, 'live'], { encoding: 'utf8' });
  assert.equal(r.status, ExitCode.usage);
  assert.match(r.stderr, /name the interface/);
});

test('live: a missing tcpdump is named, exit 2', () => {
  for (const args of [['-i', 'eth0'], ['--list']]) {
    const r = spawnSync(process.execPath, [cliPath, 'live', ...args, '--tcpdump', path.join(tmp, 'no-such-tcpdump')], { encoding: 'utf8' });
    assert.equal(r.status, ExitCode.unreadable);
    assert.match(r.stderr, /no-such-tcpdump not found: live capture runs tcpdump \(Debian\/Ubuntu: apt-get install tcpdump/);
  }
});

const haveTcpdump = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0;
const haveSetpriv = spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;
const notRoot = process.getuid?.() !== 0;

test('live: without capture permission the real tcpdump is refused and we say how to fix it', {
  skip: !haveTcpdump ? 'tcpdump is not installed' : notRoot ? 'needs root to drop to an unprivileged user (setpriv)' : !haveSetpriv ? 'setpriv is not installed' : false,
}, () => {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, cliPath, 'live', '-i', 'lo'], { encoding: 'utf8' });
  assert.equal(r.status, ExitCode.unreadable, r.stderr);
  assert.match(r.stderr, /not root and no CAP_NET_RAW/);
  assert.match(r.stderr, /no permission to capture on lo: run as root, or give tcpdump the capability/);
  assert.match(r.stderr, /tcpdump said: tcpdump: lo: You don't have permission/);
});

test('live --list: the interfaces tcpdump can capture on', { skip: !haveTcpdump && 'tcpdump is not installed' }, () => {
  const r = spawnSync(process.execPath, [cliPath, 'live', '--list'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^interface/);
  assert.match(r.stdout, /\nlo\s+.*Loopback/);
});
