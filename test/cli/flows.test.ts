// `migscope flows` end to end: the compiled CLI on real captures and on damaged copies of them:
// table / --json / --csv, exit codes (0 ok, 1 usage, 2 unreadable, 3 partial), one-line problems
// naming file, packet and byte offset, and results of the good part still printed. The same
// capture written as pcap-µs, pcap-ns big-endian, pcapng and gzip gives the same flow table.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { test } from 'node:test';
import { readCapture } from '../../src/capture/reader';
import { encodePcap, encodePcapng, type FrameToWrite } from '../../src/capture/writer';
import type { CaptureFlows } from '../../src/cli/flows';
import { cliPath, fixture } from '../helpers/paths';

const a = fixture('captures', 'a-p2p-src2dst.pcap.gz');
const f = fixture('captures', 'f-fail-nobridge.pcap.gz');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-flows-'));

function run(...args: string[]) {
  return runWithInput(undefined, ...args);
}

function runWithInput(input: Buffer | undefined, ...args: string[]) {
  const r = spawnSync(process.execPath, [cliPath, 'flows', ...args], { encoding: 'utf8', maxBuffer: 64 << 20, input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Oracle rows (tshark, fixtures/flows/README.md) as "src:port>dst:port" → frames/bytes. */
function oracle(name: string): Map<string, { frames: number; bytes: number }> {
  const rows = new Map<string, { frames: number; bytes: number }>();
  for (const line of fs.readFileSync(fixture('flows', `${name}.tcp-streams.tsv`), 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const c = line.split('\t');
    rows.set(`${c[1]}:${c[2]}>${c[3]}:${c[4]}`, { frames: +c[5], bytes: +c[6] });
  }
  return rows;
}

test('flows --json on a real capture: every direction equals tshark; exit 0', () => {
  const r = run(a, '--json');
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, '', 'quiet stderr when not a terminal');
  const [capture] = JSON.parse(r.out) as CaptureFlows[];
  assert.equal(capture.format, 'pcap');
  assert.equal(capture.packets, 52688);
  const expected = oracle('a-p2p-src2dst');
  assert.equal(capture.flows.length * 2, expected.size);
  for (const flow of capture.flows) {
    const c = `${flow.client.ip}:${flow.client.port}`;
    const s = `${flow.server.ip}:${flow.server.port}`;
    assert.deepEqual({ frames: flow.clientToServer.packets, bytes: flow.clientToServer.bytes }, expected.get(`${c}>${s}`));
    assert.deepEqual({ frames: flow.serverToClient.packets, bytes: flow.serverToClient.bytes }, expected.get(`${s}>${c}`));
    assert.equal(flow.endReason, 'fin');
    assert.ok(flow.handshakeRttSec! > 0 && flow.handshakeRttSec! < 0.01);
  }
  const migration = capture.flows.find((x) => x.server.port === 49152)!;
  assert.equal(migration.start, '1795389894.330155749');
  assert.equal(migration.clientToServer.gaps, 0);
  assert.ok(migration.clientToServer.outOfOrder > 0, 'the reordering the README describes');
});

test('flows table and --csv', () => {
  const table = run(f);
  assert.equal(table.code, 0, table.err);
  assert.match(table.out, /f-fail-nobridge\.pcap\.gz: 8008 packets \(34 TCP\), 1 TCP flows/);
  assert.match(table.out, /10\.77\.0\.1:38654\s+10\.77\.0\.2:16509\s+17\s+17\s+4006 B\s+1662 B/);
  const csv = run(f, a, '--csv');
  assert.equal(csv.code, 0, csv.err);
  const lines = csv.out.trim().split('\n');
  const header = lines[0].split(',');
  assert.equal(lines.length, 1 + 3);
  const row = Object.fromEntries(lines[1].split(',').map((v, i) => [header[i], v]));
  assert.equal(row.client, '10.77.0.1:38654');
  assert.equal(row.c2s_packets, '17');
  assert.equal(row.c2s_bytes, '4006');
  assert.equal(row.s2c_bytes, '1662');
  assert.equal(row.end_reason, 'fin');
});

test("'-' reads the capture from stdin (gzip too)", () => {
  const r = runWithInput(fs.readFileSync(f), '-', '--csv');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /\n-,1,10\.77\.0\.1:38654,10\.77\.0\.2:16509,/);
});

test('usage errors exit 1', () => {
  assert.equal(run(f, '--json', '--csv').code, 1);
  assert.equal(run().code, 1);
});

test('unreadable inputs exit 2 with a one-line message; other files are still listed', () => {
  const garbage = path.join(tmp, 'garbage.pcap');
  fs.writeFileSync(garbage, Buffer.from('this is not a capture file at all, not even close'));
  const empty = path.join(tmp, 'empty.pcap');
  fs.writeFileSync(empty, '');
  for (const bad of [garbage, empty, path.join(tmp, 'missing.pcap')]) {
    const r = run(bad, '--json');
    assert.equal(r.code, 2, `${bad}: ${r.err}`);
    const lines = r.err.trim().split('\n');
    assert.equal(lines.length, 1, r.err);
    assert.ok(lines[0].includes(bad), lines[0]);
  }
  const mixed = run(garbage, f, '--json');
  assert.equal(mixed.code, 2);
  const results = JSON.parse(mixed.out) as CaptureFlows[];
  assert.equal(results.find((x) => x.file === f)?.flows.length, 1);
});

test('a truncated capture exits 3, names file, packet and byte offset, and keeps the flows read', () => {
  const whole = zlib.gunzipSync(fs.readFileSync(f));
  const cut = path.join(tmp, 'truncated.pcap');
  fs.writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));
  const r = run(cut, '--json');
  assert.equal(r.code, 3, r.err);
  const lines = r.err.trim().split('\n');
  assert.equal(lines.length, 1);
  assert.match(lines[0], new RegExp(`${cut.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: truncated: .*packet \\d+, byte offset \\d+`));
  const [capture] = JSON.parse(r.out) as CaptureFlows[];
  assert.equal(capture.flows.length, 1, 'the flow before the damage is reported');
  assert.equal(capture.incomplete, true);
});

test('the same capture as pcap-µs, pcap-ns big-endian, pcapng and gzip gives the same flow table', async () => {
  const frames: FrameToWrite[] = [];
  await readCapture(f, { packet: (r) => { frames.push({ sec: r.sec, ps: r.ps, data: r.buf.slice(r.offset, r.offset + r.caplen), wirelen: r.wirelen }); } });
  const variants: Record<string, Buffer> = {
    'us.pcap': encodePcap(frames),
    'ns-be.pcap': encodePcap(frames, { nanosecond: true, bigEndian: true }),
    'ns.pcapng': encodePcapng([{ interfaces: [{ linkType: 1, tsresol: 9 }], packets: frames.map((x) => ({ ...x, interface: 0 })) }]),
  };
  variants['ns.pcapng.gz'] = zlib.gzipSync(variants['ns.pcapng']);
  const tables = new Map<string, unknown>();
  for (const [name, content] of Object.entries(variants)) {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, content);
    const r = run(file, '--json');
    assert.equal(r.code, 0, `${name}: ${r.err}`);
    const [capture] = JSON.parse(r.out) as CaptureFlows[];
    // modulo timestamp resolution: compare everything but instants, durations to the µs
    tables.set(name, capture.flows.map((x) => ({ ...x, start: x.start.slice(0, 17), end: x.end.slice(0, 17), relativeStartSec: x.relativeStartSec.toFixed(5), durationSec: x.durationSec.toFixed(5), handshakeRttSec: x.handshakeRttSec?.toFixed(4),
      clientToServer: { ...x.clientToServer, throughputBps: undefined }, serverToClient: { ...x.serverToClient, throughputBps: undefined } })));
  }
  const [first, ...rest] = [...tables.values()];
  for (const other of rest) assert.deepEqual(other, first);
  const original = run(f, '--json');
  assert.deepEqual(JSON.parse(original.out)[0].flows[0].clientToServer.packets, (first as { clientToServer: { packets: number } }[])[0].clientToServer.packets);
});
