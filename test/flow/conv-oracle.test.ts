// Acceptance: on every real capture the TCP conversation list equals tshark's.
// Oracles (made with tshark 4.0.17, never by this code):
//  - NAME.conv-tcp.txt beside each capture: `tshark -q -z conv,tcp -r NAME.pcap.gz` (bytes rounded
//    by tshark's format_size: integer division, "bytes" up to 10 kB, then kB/MB/GB);
//  - fixtures/flows/NAME.tcp-streams.tsv: exact frames, frame bytes and first/last epoch per
//    stream and direction, from `scripts/flows/tcp-oracle.sh NAME.pcap.gz` (tshark fields + awk).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { capturesDir, fixture, sharedCapturesDir } from '../helpers/paths';
import { runPipeline } from '../../src/flow/pipeline';
import { formatTimestamp } from '../../src/core/timestamp';
import type { TcpFlow } from '../../src/flow/tcp-flow';
import { assertConvEqual, tsharkSize } from './tshark-conv';

interface StreamRow {
  src: string;
  dst: string;
  frames: number;
  bytes: number;
  first: string;
  last: string;
}

function parseStreams(text: string): StreamRow[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const f = l.split('\t');
      return { src: `${f[1]}:${f[2]}`, dst: `${f[3]}:${f[4]}`, frames: +f[5], bytes: +f[6], first: f[7], last: f[8] };
    });
}

const CAPTURES = [
  path.join(capturesDir, 'a-p2p-src2dst.pcap.gz'),
  path.join(capturesDir, 'd-p2p-tunnelled.pcap.gz'),
  path.join(capturesDir, 'f-fail-nobridge.pcap.gz'),
  path.join(sharedCapturesDir, 'g3-loaded-4M-bw12-multipass-repeat.pcap.gz'),
];

function endpoint(flow: TcpFlow, side: 0 | 1): string {
  const e = side === 0 ? flow.info.client : flow.info.server;
  return `${e.ip}:${e.port}`;
}

test('tsharkSize reproduces the formats seen in the oracles', () => {
  assert.equal(tsharkSize(3632), '3632 bytes');
  assert.equal(tsharkSize(10999), '10999 bytes');
  assert.equal(tsharkSize(12556), '12 kB');
  assert.equal(tsharkSize(149706), '149 kB');
  assert.equal(tsharkSize(56556675), '56 MB');
});

for (const capture of CAPTURES) {
  const name = path.basename(capture, '.pcap.gz');
  const present = fs.existsSync(capture);
  test(`flows of ${name} equal tshark's conversation list`, { skip: present ? false : `${capture} not present` }, async () => {
    const result = await runPipeline(capture);
    assert.equal(result.problems.length, 0);
    assertConvEqual(result, fs.readFileSync(capture.replace(/\.pcap\.gz$/, '.conv-tcp.txt'), 'utf8'));

    const streams = parseStreams(fs.readFileSync(fixture('flows', `${name}.tcp-streams.tsv`), 'utf8'));
    assert.equal(streams.length, 2 * result.flows.length);
    for (const s of streams) {
      let matched = false;
      for (const flow of result.flows) {
        for (const dir of [0, 1] as const) {
          if (endpoint(flow, dir) !== s.src || endpoint(flow, (1 - dir) as 0 | 1) !== s.dst) continue;
          const st = flow.stats[dir];
          assert.equal(st.packets, s.frames, `${s.src} → ${s.dst} frames`);
          assert.equal(st.bytes, s.bytes, `${s.src} → ${s.dst} bytes`);
          assert.equal(formatTimestamp({ sec: st.firstSec, ps: st.firstPs }, 9), s.first);
          assert.equal(formatTimestamp({ sec: st.lastSec, ps: st.lastPs }, 9), s.last);
          matched = true;
        }
      }
      assert.ok(matched, `${s.src} → ${s.dst} found`);
    }
    // The captures have no snaplen cuts or losses: every flow's bytes arrive complete.
    for (const flow of result.flows) {
      for (const st of flow.stats) assert.equal(st.gaps, 0);
      assert.equal(flow.endReason, 'fin');
    }
  });
}
