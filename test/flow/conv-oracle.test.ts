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
import { formatTimestamp, fromBigIntPs, psBetween } from '../../src/core/timestamp';
import type { TcpFlow } from '../../src/flow/tcp-flow';

interface ConvRow {
  a: string; // "ip:port"
  b: string;
  framesBtoA: number; // tshark's "<-" columns
  bytesBtoA: string;
  framesAtoB: number; // "->"
  bytesAtoB: string;
  relStart: string;
  duration: string;
}

/** Rows of `tshark -q -z conv,tcp`. */
export function parseConvTcp(text: string): ConvRow[] {
  const rows: ConvRow[] = [];
  const size = String.raw`(\d+ (?:bytes|kB|MB|GB|TB))`;
  const re = new RegExp(String.raw`^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+${size}\s+(\d+)\s+${size}\s+(\d+)\s+${size}\s+([\d.]+)\s+([\d.]+)\s*$`);
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (m) rows.push({ a: m[1], b: m[2], framesBtoA: +m[3], bytesBtoA: m[4], framesAtoB: +m[5], bytesAtoB: m[6], relStart: m[9], duration: m[10] });
  }
  return rows;
}

/** tshark 4.0 format_size(…, SI): integer division, next unit once the value exceeds 10 of it. */
export function tsharkSize(bytes: number): string {
  const units = ['kB', 'MB', 'GB', 'TB'];
  let unit = -1;
  let value = bytes;
  while (unit < units.length - 1 && Math.floor(value / 1000) > 10) {
    value = Math.floor(value / 1000);
    unit++;
  }
  // one more division when the value is shown in the next unit
  return unit < 0 ? `${bytes} bytes` : `${value} ${units[unit]}`;
}

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
    const first = result.first!;
    const conv = parseConvTcp(fs.readFileSync(capture.replace(/\.pcap\.gz$/, '.conv-tcp.txt'), 'utf8'));
    assert.ok(conv.length > 0, 'oracle parsed');
    assert.equal(result.flows.length, conv.length);
    for (const row of conv) {
      const flow = result.flows.find((f) => new Set([endpoint(f, 0), endpoint(f, 1)]).has(row.a) && new Set([endpoint(f, 0), endpoint(f, 1)]).has(row.b));
      assert.ok(flow, `flow ${row.a} <-> ${row.b}`);
      const aIsClient = endpoint(flow, 0) === row.a;
      const aToB = flow.stats[aIsClient ? 0 : 1];
      const bToA = flow.stats[aIsClient ? 1 : 0];
      assert.equal(aToB.packets, row.framesAtoB);
      assert.equal(bToA.packets, row.framesBtoA);
      assert.equal(tsharkSize(aToB.bytes), row.bytesAtoB);
      assert.equal(tsharkSize(bToA.bytes), row.bytesBtoA);
      assert.equal(formatTimestamp(fromBigIntPs(psBetween(first, flow.first)), 9), row.relStart);
      assert.equal(flow.durationSec.toFixed(4), row.duration);
    }

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
