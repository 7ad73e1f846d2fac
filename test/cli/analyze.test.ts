// `migscope analyze` end to end: the compiled CLI on real captures — table, exit codes,
// --json / --csv readable by `report`, --messages equal to the tshark oracle rows.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { recordsFromCsv, recordsFromJson } from '../../src/report/records-io';
import { cliPath, fixture } from '../helpers/paths';
import { readTsharkLibvirt } from '../protocols/libvirt/oracle-files';

const a = fixture('captures', 'a-p2p-src2dst.pcap.gz');
const f = fixture('captures', 'f-fail-nobridge.pcap.gz');

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [cliPath, 'analyze', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('analyze prints the phase table and exits 0 for a completed migration', () => {
  const r = run(a);
  assert.equal(r.code, 0, r.err);
  for (const text of ['10.77.0.1 → 10.77.0.2', 'COMPLETED', 'remote connect', 'preparation', 'transfer', 'finish', 'cleanup', 'migration time (libvirt) 2.690 s', 'downtime']) {
    assert.ok(r.out.includes(text), `output has "${text}":\n${r.out}`);
  }
});

test('analyze exits 4 for a failed migration and names the reason; --json and --csv feed report', () => {
  const r = run(f, '--json');
  assert.equal(r.code, 4);
  const records = recordsFromJson(r.out);
  assert.equal(records.length, 1);
  assert.equal(records[0].outcome, 'failed');
  assert.match(records[0].reason ?? '', /Cannot get interface MTU on 'nobr0'/);
  const csv = run(a, f, '--csv');
  assert.equal(csv.code, 4, 'several captures: the highest code');
  const back = recordsFromCsv(csv.out);
  assert.deepEqual(back.map((x) => x.outcome), ['completed', 'failed']);
  assert.equal(back[0].phases.transfer?.start, '1795389894.330155749');
});

test('analyze --messages lists the libvirt messages exactly as tshark does', () => {
  const r = run(a, '--messages');
  assert.equal(r.code, 0);
  const [, ...rows] = r.out.trim().split('\n');
  const oracle = readTsharkLibvirt(fixture('captures', 'a-p2p-src2dst.tshark-libvirt.tsv'));
  assert.deepEqual(
    rows.map((row) => row.split('\t').slice(0, 13).join('\t')),
    oracle.map((m) => [m.frame, m.epoch, m.src, m.srcPort, m.dst, m.dstPort, `0x${m.program.toString(16).padStart(8, '0')}`, m.version, m.procedure, m.type, m.serial, m.status, m.length].join('\t')),
  );
});

test('analyze --timeline prints the marker messages in order', () => {
  const r = run(a, '--timeline');
  const lines = r.out.split('\n').filter((l) => /  #\d+  .*  remote /.test(l));
  assert.deepEqual(
    lines.map((l) => /remote (\S+) (CALL|REPLY)/.exec(l)?.slice(1).join(' ')),
    ['CONNECT_OPEN CALL', 'CONNECT_OPEN REPLY', 'DOMAIN_MIGRATE_PREPARE3_PARAMS CALL', 'DOMAIN_MIGRATE_PREPARE3_PARAMS REPLY', 'DOMAIN_MIGRATE_FINISH3_PARAMS CALL', 'DOMAIN_MIGRATE_FINISH3_PARAMS REPLY', 'CONNECT_CLOSE CALL', 'CONNECT_CLOSE REPLY'],
  );
});

test('analyze on a file that is not a capture exits 2', () => {
  const r = run(fixture('captures', 'a-p2p-src2dst.json'));
  assert.equal(r.code, 2);
});

test("analyze - reads the capture from stdin", () => {
  const r = spawnSync(process.execPath, [cliPath, 'analyze', '-', '--json'], { input: require('node:zlib').gunzipSync(require('node:fs').readFileSync(a)), encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  const records = recordsFromJson(r.stdout);
  assert.equal(records.length, 1);
  assert.equal(records[0].phases.transfer?.start, '1795389894.330155749');
});
