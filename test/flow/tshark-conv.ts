// Parsing `tshark -q -z conv,tcp` output (tshark 4.0) and comparing a pipeline's flows with it.
import assert from 'node:assert/strict';
import { formatTimestamp, fromBigIntPs, psBetween } from '../../src/core/timestamp';
import type { PipelineResult } from '../../src/flow/pipeline';
import type { TcpFlow } from '../../src/flow/tcp-flow';

export interface ConvRow {
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


function endpoint(flow: TcpFlow, side: 0 | 1): string {
  const e = side === 0 ? flow.info.client : flow.info.server;
  return `${e.ip}:${e.port}`;
}

/** Every conversation tshark lists is one flow (endpoints, relative start; several rows with the
 *  same endpoints = port reuse) with the same frames and bytes per direction and duration. */
export function assertConvEqual(result: PipelineResult, convText: string): void {
  const rows = parseConvTcp(convText);
  assert.ok(rows.length > 0, 'oracle parsed');
  assert.equal(result.flows.length, rows.length, 'number of conversations');
  const first = result.first!;
  const used = new Set<TcpFlow>();
  for (const row of rows) {
    const flow = result.flows.find((f) => !used.has(f) && [endpoint(f, 0), endpoint(f, 1)].sort().join() === [row.a, row.b].sort().join()
      && formatTimestamp(fromBigIntPs(psBetween(first, f.first)), 9) === row.relStart);
    assert.ok(flow, `flow ${row.a} <-> ${row.b} starting at ${row.relStart}`);
    used.add(flow);
    const aIsClient = endpoint(flow, 0) === row.a;
    const aToB = flow.stats[aIsClient ? 0 : 1];
    const bToA = flow.stats[aIsClient ? 1 : 0];
    assert.equal(aToB.packets, row.framesAtoB, `${row.a} → ${row.b} frames`);
    assert.equal(bToA.packets, row.framesBtoA, `${row.b} → ${row.a} frames`);
    assert.equal(tsharkSize(aToB.bytes), row.bytesAtoB);
    assert.equal(tsharkSize(bToA.bytes), row.bytesBtoA);
    assert.equal(flow.durationSec.toFixed(4), row.duration);
  }
}
