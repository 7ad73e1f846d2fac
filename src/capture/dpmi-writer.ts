// Writes DPMI (caputils) traces, independently of the reader: for tests (format variants the
// real tools cannot make: 0.5/0.6 headers, big-endian, grown 0.7 headers, damaged records) and
// for the benchmark (the synthetic pcap as a DPMI trace). Not used by the analyzer itself.
import * as fs from 'node:fs';
import { DPMI_HEADER_05, DPMI_HEADER_06, DPMI_HEADER_07, DPMI_RECORD_HEADER } from './dpmi';
import { readCaptureBytes } from './reader';

export interface DpmiTraceOptions {
  readonly version?: '0.5' | '0.6' | '0.7'; // default 0.7
  readonly bigEndian?: boolean;
  readonly comment?: string;
  readonly mpid?: string;
  /** 0.7 only: header_offset larger than 216, as a newer writer with a grown header would write. */
  readonly headerOffset?: number;
}

export interface DpmiFrame {
  readonly sec: number;
  readonly ps: number;
  readonly data: Uint8Array;
  readonly wirelen?: number; // default data.length
  readonly nic?: string; // capture interface, ≤ 8 bytes (default "CONV")
  readonly mampid?: string; // measurement point, ≤ 8 bytes (default "test")
}

const MAGIC = 0x8f1ae247c53d9b6en;

export function dpmiFileHeader(options: DpmiTraceOptions = {}): Buffer {
  const comment = Buffer.from(options.comment ?? '', 'utf8');
  const mpid = Buffer.from(options.mpid ?? 'test', 'latin1').subarray(0, 199);
  const le = !options.bigEndian;
  const version = options.version ?? '0.7';
  const w16 = (b: Buffer, v: number, at: number) => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  const w32 = (b: Buffer, v: number, at: number) => (le ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
  if (version === '0.5') {
    const h = Buffer.alloc(DPMI_HEADER_05);
    w32(h, comment.length, 0);
    w32(h, 0, 4);
    w32(h, 5, 8);
    mpid.copy(h, 12);
    return Buffer.concat([h, comment]);
  }
  if (version === '0.6') {
    const h = Buffer.alloc(DPMI_HEADER_06);
    w32(h, comment.length, 0);
    h[4] = 0;
    h[5] = 6;
    mpid.copy(h, 6);
    return Buffer.concat([h, comment]);
  }
  const headerOffset = options.headerOffset ?? DPMI_HEADER_07;
  const h = Buffer.alloc(headerOffset);
  if (le) h.writeBigUInt64LE(MAGIC, 0);
  else h.writeBigUInt64BE(MAGIC, 0);
  w16(h, 0, 8);
  w16(h, 7, 10);
  w16(h, headerOffset, 12);
  w16(h, comment.length, 14);
  mpid.copy(h, 16);
  return Buffer.concat([h, comment]);
}

/** One record: the 36-byte capture header + frame, in the trace's byte order. */
export function dpmiRecord(frame: DpmiFrame, options: Pick<DpmiTraceOptions, 'bigEndian'> = {}): Buffer {
  const out = Buffer.alloc(DPMI_RECORD_HEADER + frame.data.length);
  const le = !options.bigEndian;
  Buffer.from(frame.nic ?? 'CONV', 'latin1').subarray(0, 8).copy(out, 0);
  Buffer.from(frame.mampid ?? 'test', 'latin1').subarray(0, 8).copy(out, 8);
  if (le) {
    out.writeUInt32LE(frame.sec, 16);
    out.writeBigUInt64LE(BigInt(frame.ps), 20);
    out.writeUInt32LE(frame.wirelen ?? frame.data.length, 28);
    out.writeUInt32LE(frame.data.length, 32);
  } else {
    out.writeUInt32BE(frame.sec, 16);
    out.writeBigUInt64BE(BigInt(frame.ps), 20);
    out.writeUInt32BE(frame.wirelen ?? frame.data.length, 28);
    out.writeUInt32BE(frame.data.length, 32);
  }
  out.set(frame.data, DPMI_RECORD_HEADER);
  return out;
}

export function encodeDpmi(frames: Iterable<DpmiFrame>, options: DpmiTraceOptions = {}): Buffer {
  const parts = [dpmiFileHeader(options)];
  for (const frame of frames) parts.push(dpmiRecord(frame, options));
  return Buffer.concat(parts);
}

/**
 * Converts an uncompressed capture file (pcap, pcapng, DPMI) to a DPMI 0.7 trace, synchronously
 * and streaming (the benchmark's DPMI input: the same frames as its synthetic pcap). Every frame
 * gets location `mampid:nic` (default "bench:CONV").
 */
export function convertToDpmiSync(input: string, output: string, options: DpmiTraceOptions & { nic?: string; mampid?: string } = {}): { packets: number; bytes: number } {
  const inFd = fs.openSync(input, 'r');
  const outFd = fs.openSync(output, 'w');
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  let bytes = 0;
  const flush = () => {
    const chunk = Buffer.concat(pending, pendingBytes);
    fs.writeSync(outFd, chunk);
    bytes += chunk.length;
    pending.length = 0;
    pendingBytes = 0;
  };
  const put = (b: Buffer) => {
    pending.push(b);
    pendingBytes += b.length;
    if (pendingBytes >= 4 << 20) flush();
  };
  try {
    put(dpmiFileHeader(options));
    const chunks = function* (): Generator<Uint8Array> {
      const buffer = Buffer.allocUnsafe(4 << 20); // reused: the reader copies what it keeps
      for (let n; (n = fs.readSync(inFd, buffer, 0, buffer.length, null)) > 0; ) yield buffer.subarray(0, n);
    };
    const summary = readCaptureBytes(input, chunks(), {
      packet: (r) => put(dpmiRecord({ sec: r.sec, ps: r.ps, data: r.buf.subarray(r.offset, r.offset + r.caplen), wirelen: r.wirelen, nic: options.nic ?? 'CONV', mampid: options.mampid ?? 'bench' }, options)),
    });
    flush();
    return { packets: summary.packets, bytes };
  } finally {
    fs.closeSync(inFd);
    fs.closeSync(outFd);
  }
}
