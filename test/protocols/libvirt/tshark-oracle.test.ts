// Every libvirt message migscope decodes on the real captures equals tshark's libvirt dissector
// list (frame, time, endpoints, header, length), message for message; on the tunnelled capture,
// where tshark loses track, migscope's list must contain tshark's and pair every call.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatTimestamp } from '../../../src/core/timestamp';
import { analyzeCapture, type CaptureAnalysis } from '../../../src/migration/analyze-capture';
import { MessageType } from '../../../src/protocols/libvirt/rpc';
import { captureFile, readTsharkLibvirt, type TsharkMessage } from './oracle-files';

function ours(analysis: CaptureAnalysis): TsharkMessage[] {
  return (analysis.libvirtMessages ?? []).map(({ message: m, src, srcPort, dst, dstPort }) => ({
    frame: m.packet,
    epoch: formatTimestamp(m.at, 9),
    src,
    srcPort,
    dst,
    dstPort,
    program: m.program,
    version: m.version,
    procedure: m.procedure,
    type: m.type,
    serial: m.serial,
    status: m.status,
    length: m.length,
  }));
}

const key = (m: TsharkMessage): string => JSON.stringify(m);

for (const name of ['a-p2p-src2dst', 'f-fail-nobridge', 'g3-loaded-4M-bw12-multipass-repeat']) {
  const pcap = captureFile(name, 'pcap.gz');
  const tsv = captureFile(name, 'tshark-libvirt.tsv');
  test(`${name}: libvirt messages equal tshark's, message for message`, { skip: !pcap || !tsv ? `${name} not found` : false }, async () => {
    const analysis = await analyzeCapture(pcap!, { messages: true });
    const expected = readTsharkLibvirt(tsv!);
    assert.ok(expected.length > 20, 'oracle has the whole conversation');
    assert.deepEqual(ours(analysis), expected);
    assert.deepEqual(analysis.problems, []);
  });
}

test('d-p2p-tunnelled: a superset of tshark\'s incomplete list, every call answered, stream bytes = the QEMU stream', async () => {
  const pcap = captureFile('d-p2p-tunnelled', 'pcap.gz')!;
  const analysis = await analyzeCapture(pcap, { messages: true });
  const mine = ours(analysis);
  const oracle = readTsharkLibvirt(captureFile('d-p2p-tunnelled', 'tshark-libvirt.tsv')!);
  const mineKeys = new Set(mine.map(key));
  const missing = oracle.filter((m) => !mineKeys.has(key(m)));
  assert.deepEqual(missing, [], 'every message tshark decoded is in ours, identical');
  assert.ok(mine.length > oracle.length * 3, `ours ${mine.length} messages, tshark ${oracle.length}: tshark lost track`);

  const calls = mine.filter((m) => m.type === MessageType.CALL);
  const replies = new Set(mine.filter((m) => m.type === MessageType.REPLY).map((m) => `${m.program}:${m.serial}`));
  assert.deepEqual(calls.filter((c) => !replies.has(`${c.program}:${c.serial}`)), [], 'every call has its reply');
  // The procedures tshark missed after losing track (FINISH3_PARAMS, unregister, close) are there.
  for (const procedure of [306, 361, 2]) assert.ok(calls.some((c) => c.procedure === procedure), `call of procedure ${procedure}`);

  // Stream framing: CONTINUE messages of the tunnel serial, then one OK from each side.
  const stream = mine.filter((m) => m.type === MessageType.STREAM);
  const continues = stream.filter((m) => m.status === 2);
  assert.ok(continues.every((m) => m.serial === continues[0].serial && m.procedure === 304 && m.src === '10.77.0.1'));
  assert.deepEqual(stream.filter((m) => m.status === 0).map((m) => m.src), ['10.77.0.1', '10.77.0.2']);
  const tunnelBytes = continues.reduce((n, m) => n + m.length - 28, 0);
  assert.equal(analysis.records[0].transfer?.bytes, tunnelBytes, 'transfer bytes are the STREAM payloads');
});
