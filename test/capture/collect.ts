// Test helpers for the capture readers: collect what a reader emits (copying the reused record)
// and load real captures into memory.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { readCaptureBytes } from '../../src/capture/reader';
import type { CaptureInterface, CaptureSummary, PacketRecord, PacketSink } from '../../src/capture/types';
import type { CaptureProblem } from '../../src/core/errors';
import type { FrameToWrite, PcapngInterfaceSpec } from '../../src/capture/writer';
import { PS_PER_SEC } from '../../src/core/timestamp';

export interface CollectedPacket {
  sec: number;
  ps: number;
  caplen: number;
  wirelen: number;
  interfaceId: number;
  linkType: number;
  index: number;
  fileOffset: number;
  data: Buffer;
}

export interface Collector extends PacketSink {
  packets: CollectedPacket[];
  interfaces: CaptureInterface[];
  problems: CaptureProblem[];
}

export function collector(): Collector {
  const c: Collector = {
    packets: [],
    interfaces: [],
    problems: [],
    interface(iface) { c.interfaces.push(iface); },
    packet(r: PacketRecord) {
      c.packets.push({
        sec: r.sec, ps: r.ps, caplen: r.caplen, wirelen: r.wirelen, interfaceId: r.interfaceId, linkType: r.linkType,
        index: r.index, fileOffset: r.fileOffset, data: Buffer.from(r.buf.subarray(r.offset, r.offset + r.caplen)),
      });
    },
    problem(p) { c.problems.push(p); },
  };
  return c;
}

/** Reads bytes split at the given sizes (cycled), collecting everything. */
export function readSplit(bytes: Uint8Array, sizes: number[] = [bytes.length || 1]): { summary: CaptureSummary; got: Collector } {
  const got = collector();
  const chunks: Uint8Array[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length]);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  const summary = readCaptureBytes('test', chunks, got);
  return { summary, got };
}

export function gunzipFile(file: string, maxBytes?: number): Buffer {
  const all = zlib.gunzipSync(fs.readFileSync(file));
  return maxBytes === undefined ? all : all.subarray(0, maxBytes);
}

/** The first `count` frames of a capture (all when undefined), as writer input. */
export function framesOf(bytes: Uint8Array, count?: number): FrameToWrite[] {
  const { got } = readSplit(bytes);
  return got.packets.slice(0, count).map((p) => ({ sec: p.sec, ps: p.ps, data: p.data, wirelen: p.wirelen }));
}

/** What a reader must produce for `units` of a pcapng interface, computed with bigint
 *  (independently of the reader's double arithmetic): exact for 10^-n, nearest ps for 2^-n. */
export function expectedTime(spec: PcapngInterfaceSpec, units: bigint): { sec: number; ps: number } {
  const resol = spec.tsresol ?? 6;
  const exponent = BigInt(resol & 0x7f);
  const perSec = resol & 0x80 ? 1n << exponent : 10n ** exponent;
  let sec = units / perSec;
  let ps = ((units % perSec) * BigInt(PS_PER_SEC) * 2n + perSec) / (2n * perSec); // round half up
  if (ps === BigInt(PS_PER_SEC)) { sec += 1n; ps = 0n; }
  return { sec: Number(sec) + (spec.tsoffset ?? 0), ps: Number(ps) };
}
