// One multifd channel of a QEMU migration (migration/multifd.c, 6.x–8.x): a 64-byte init
// message, then packets of a fixed header, the page-offset array and the page data. With
// multifd the main stream keeps zero pages, sections and device state; the normal pages travel
// here. Headers are parsed and data skipped by its announced size, so compressed channels
// (zlib, zstd) are counted just as well; only the page contents stay unknown.
import type { Timestamp } from '../../core/timestamp';
import { MULTIFD_MAGIC } from './format';

const INIT_SIZE = 64; // be32 magic, be32 version, 16-byte uuid, u8 id, 7 + 32 reserved
const HEADER_SIZE = 320; // be32 magic, version, flags, pages_alloc, normal_pages, next_packet_size, be64 packet_num, be32 zero_pages (9.0+), 28 reserved bytes, char ramblock[256]
const FLAG_SYNC = 0x1;
const COMPRESSION_MASK = 0xe;
const COMPRESSION_NAMES: Record<number, string> = { 0: 'none', 2: 'zlib', 4: 'zstd' };
const MAX_PAGES_ALLOC = 1 << 20;

export interface MultifdChannelResult {
  channel?: number; // channel id from the init message
  packets: number;
  syncPackets: number;
  pages: number; // normal pages carried
  zeroPages: number; // 9.0+: zero pages announced in the header (the unused word before, so 0)
  dataBytes: number; // page data (compressed size when compressed)
  compression?: string;
  firstPacketNumber?: number;
  lastPacketNumber?: number;
  bytes: number;
  first?: Timestamp;
  last?: Timestamp;
  stopped?: string;
}

function be32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

export class MultifdChannelDecoder {
  private readonly header = new Uint8Array(HEADER_SIZE);
  private headerLen = 0;
  private want = INIT_SIZE; // bytes of the init message / packet header still to collect
  private inInit = true;
  private skip = 0;
  private readonly state: MultifdChannelResult = { packets: 0, syncPackets: 0, pages: 0, zeroPages: 0, dataBytes: 0, bytes: 0 };

  push(buf: Uint8Array, start: number, end: number, at: Timestamp): void {
    const s = this.state;
    s.bytes += end - start;
    if (s.first === undefined) s.first = at;
    s.last = at;
    let pos = start;
    while (pos < end && !s.stopped) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, end - pos);
        this.skip -= n;
        pos += n;
        continue;
      }
      const n = Math.min(this.want - this.headerLen, end - pos);
      this.header.set(buf.subarray(pos, pos + n), this.headerLen);
      this.headerLen += n;
      pos += n;
      if (this.headerLen === this.want) this.parse();
    }
  }

  gap(length: number, at: Timestamp): void {
    this.state.bytes += length;
    this.state.last = at;
    if (this.state.stopped) return;
    if (this.headerLen === 0 && this.skip >= length) this.skip -= length;
    else this.state.stopped = `${length} bytes missing from the capture`;
  }

  result(): MultifdChannelResult {
    return { ...this.state };
  }

  private parse(): void {
    const h = this.header;
    const s = this.state;
    this.headerLen = 0;
    if (be32(h, 0) !== MULTIFD_MAGIC) {
      s.stopped = `bad multifd magic 0x${be32(h, 0).toString(16)} after ${s.packets} packets`;
      return;
    }
    if (this.inInit) {
      s.channel = h[24];
      this.inInit = false;
      this.want = HEADER_SIZE;
      return;
    }
    const flags = be32(h, 8);
    const pagesAlloc = be32(h, 12);
    const normalPages = be32(h, 16);
    const nextPacketSize = be32(h, 20);
    const packetNumber = be32(h, 24) * 2 ** 32 + be32(h, 28);
    if (pagesAlloc > MAX_PAGES_ALLOC || normalPages > pagesAlloc) {
      s.stopped = `multifd packet header with ${normalPages}/${pagesAlloc} pages`;
      return;
    }
    s.packets++;
    if (flags & FLAG_SYNC) s.syncPackets++;
    s.pages += normalPages;
    s.zeroPages += be32(h, 32);
    s.dataBytes += nextPacketSize;
    s.compression = COMPRESSION_NAMES[flags & COMPRESSION_MASK] ?? `flags 0x${(flags & COMPRESSION_MASK).toString(16)}`;
    if (s.firstPacketNumber === undefined) s.firstPacketNumber = packetNumber;
    s.lastPacketNumber = packetNumber;
    // the whole offset array (pages_alloc entries) is sent, then the data
    this.skip = pagesAlloc * 8 + nextPacketSize;
  }
}
