// The bench's synthetic capture is a migration the analyzer recognises end to end: one completed
// p2p migration, five phases in order, transfer = the generated stream, downtime = the generated
// probe outage. (A few MB only: the generator's speed is the benchmark's business.)
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { parseTimestamp, secondsBetween } from '../../src/core/timestamp';
import { analyzeCapture } from '../../src/migration/analyze-capture';
import { procedureName } from '../../src/protocols/libvirt/rpc';
import { generateSyntheticCapture } from '../../scripts/bench/synthetic-capture';

const PHASES = ['remoteConnect', 'preparation', 'transfer', 'finish', 'cleanup'] as const;

test('synthetic bench capture: one completed p2p migration with all phases, transfer bytes and probe outage', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-synthetic-'));
  try {
    const file = path.join(dir, 'synthetic.pcap');
    const info = generateSyntheticCapture(file, { bytes: 12e6, keepaliveIntervalMs: 5, outageProbes: 30 });
    assert.equal(fs.statSync(file).size, info.bytes);
    assert.equal(info.probesLost, 30);
    assert.ok(info.keepalives > 0, 'keepalives interleaved');

    const analysis = await analyzeCapture(file, { messages: true });
    assert.deepEqual(analysis.problems.map((p) => p.message), []);
    assert.equal(analysis.records.length, 1);
    const [record] = analysis.records;
    assert.equal(record.outcome, 'completed');
    assert.equal(record.mode, 'p2p');
    assert.equal(record.live, true);
    assert.equal(record.source, '10.77.0.1');
    assert.equal(record.destination, '10.77.0.2');
    assert.equal(record.domain, info.domain.name);
    assert.equal(record.uuid, info.domain.uuid);

    let previousEnd = parseTimestamp(record.start);
    for (const name of PHASES) {
      const phase = record.phases[name];
      assert.ok(phase, `phase ${name}`);
      assert.ok(secondsBetween(previousEnd, parseTimestamp(phase.start)) >= 0, `${name} starts after the previous phase`);
      assert.ok(phase.seconds > 0, `${name} lasts`);
      previousEnd = parseTimestamp(phase.end);
    }

    assert.equal(record.transfer?.bytes, info.bulkPayloadBytes);
    assert.equal(record.transfer?.migrateUri, 'tcp:10.77.0.2:49152');
    assert.equal(record.transfer?.connection, '10.77.0.1:40000 → 10.77.0.2:49152');
    assert.equal(record.qemuStream?.complete, true);
    assert.equal(record.qemuStream?.normalPages, info.pages - info.zeroPages);

    assert.equal(record.downtime?.probeTarget, '10.77.0.10');
    assert.equal(record.downtime?.probesLost, info.probesLost);
    // Reply gap: the last reply before the outage to the first after it = (lost + 1) probe intervals.
    assert.ok(Math.abs((record.downtime?.gapSec ?? 0) - (info.probesLost + 1) * 1e-3) < 1e-4, `gap ${record.downtime?.gapSec}`);

    // Every generated RPC message decodes (keepalives included), in the libvirt 9.0 order.
    const rows = (analysis.libvirtMessages ?? []).map((row) => ({ ...row.message, name: procedureName(row.message.program, row.message.procedure) }));
    const names = rows.filter((m) => m.program === 0x20008086).map((m) => m.name);
    assert.deepEqual([...new Set(names)], ['AUTH_LIST', 'CONNECT_SUPPORTS_FEATURE', 'CONNECT_OPEN', 'CONNECT_REGISTER_CLOSE_CALLBACK',
      'DOMAIN_MIGRATE_PREPARE3_PARAMS', 'DOMAIN_MIGRATE_FINISH3_PARAMS', 'CONNECT_UNREGISTER_CLOSE_CALLBACK', 'CONNECT_CLOSE']);
    const keepalives = rows.filter((m) => m.program === 0x6b656570).map((m) => m.name);
    assert.equal(keepalives.length, 2 * info.keepalives);
    assert.deepEqual([...new Set(keepalives)], ['PING', 'PONG']);
    for (const m of rows) assert.equal(m.payloadProblem, undefined, `${m.name} decodes`);
    const prepareReply = rows.find((m) => m.name === 'DOMAIN_MIGRATE_PREPARE3_PARAMS' && m.type === 1);
    assert.equal(prepareReply?.body?.uriOut, 'tcp:10.77.0.2:49152');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
