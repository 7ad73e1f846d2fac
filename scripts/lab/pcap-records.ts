// A minimal streaming reader for classic pcap files (gzip or plain), just enough for the lab's
// capture slimmer and fixture checks; migscope's real reader is src/capture/. Records are
// handed out one at a time; their bytes are only valid during the callback.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';

export interface PcapHeader {
  raw: Buffer; // the 24-byte global header, as in the file
  littleEndian: boolean;
  nanosecond: boolean;
  snaplen: number;
  linkType: number;
}

export interface PcapRecord {
  index: number; // 1-based frame number
  sec: number;
  frac: number; // µs or ns, per header.nanosecond
  caplen: number;
  wirelen: number;
  data: Buffer; // caplen bytes
}

export async function readPcap(
  file: string,
  onHeader: (h: PcapHeader) => void,
  onRecord: (r: PcapRecord, h: PcapHeader) => void,
): Promise<number> {
  let input: NodeJS.ReadableStream = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  if (file.endsWith('.gz')) input = input.pipe(zlib.createGunzip());
  let pending: Buffer = Buffer.alloc(0);
  let header: PcapHeader | undefined;
  let index = 0;
  let fileOffset = 0;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    if (!header) {
      if (pending.length < 24) continue;
      const magicLE = pending.readUInt32LE(0);
      const magicBE = pending.readUInt32BE(0);
      const le = magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d;
      if (!le && magicBE !== 0xa1b2c3d4 && magicBE !== 0xa1b23c4d) throw new Error(`${file}: not a classic pcap file`);
      const magic = le ? magicLE : magicBE;
      const u32 = (o: number) => (le ? pending.readUInt32LE(o) : pending.readUInt32BE(o));
      header = { raw: Buffer.from(pending.subarray(0, 24)), littleEndian: le, nanosecond: magic === 0xa1b23c4d, snaplen: u32(16), linkType: u32(20) & 0xffff };
      onHeader(header);
      at = 24;
    }
    const h = header;
    const u32 = (o: number) => (h.littleEndian ? pending.readUInt32LE(o) : pending.readUInt32BE(o));
    while (pending.length - at >= 16) {
      const caplen = u32(at + 8);
      if (caplen > 0x4000000) throw new Error(`${file}: record ${index + 1} at byte ${fileOffset + at} has caplen ${caplen}`);
      if (pending.length - at < 16 + caplen) break;
      index++;
      onRecord({ index, sec: u32(at), frac: u32(at + 4), caplen, wirelen: u32(at + 12), data: pending.subarray(at + 16, at + 16 + caplen) }, h);
      at += 16 + caplen;
    }
    fileOffset += at;
    pending = pending.subarray(at);
  }
  if (pending.length) throw new Error(`${file}: truncated record after frame ${index} at byte ${fileOffset}`);
  return index;
}

/** IPv4/TCP or ICMP fields of an Ethernet frame, or null. Offsets index into the frame. */
export interface FrameInfo {
  src: string;
  dst: string;
  proto: number; // 6 TCP, 1 ICMP, ...
  sport: number;
  dport: number;
  l4Offset: number; // start of the TCP/ICMP header
  payloadOffset: number; // start of TCP payload (TCP) or ICMP header (ICMP)
}

export function ipv4Info(frame: Buffer): FrameInfo | null {
  let off = 14;
  let etherType = frame.length >= 14 ? frame.readUInt16BE(12) : 0;
  if (etherType === 0x8100 && frame.length >= 18) {
    etherType = frame.readUInt16BE(16);
    off = 18;
  }
  if (etherType !== 0x0800 || frame.length < off + 20) return null;
  const ihl = (frame[off] & 0x0f) * 4;
  const proto = frame[off + 9];
  const ip = (o: number) => `${frame[o]}.${frame[o + 1]}.${frame[o + 2]}.${frame[o + 3]}`;
  const l4 = off + ihl;
  const info: FrameInfo = { src: ip(off + 12), dst: ip(off + 16), proto, sport: 0, dport: 0, l4Offset: l4, payloadOffset: l4 };
  if (proto === 6 && frame.length >= l4 + 20) {
    info.sport = frame.readUInt16BE(l4);
    info.dport = frame.readUInt16BE(l4 + 2);
    info.payloadOffset = l4 + (frame[l4 + 12] >> 4) * 4;
  }
  return info;
}
