// DPMI traces (libcap_utils "caputils" format, versions 0.5, 0.6, 0.7): a file header with the
// trace comment and measurement-point id, then records of a 36-byte capture header + frame. Every
// frame carries its own location (MP id + capture interface), exposed as one CaptureInterface
// per location, and a picosecond timestamp kept exactly. Layout notes: src/capture/DPMI.md.
import { RecordFramer, u32, u32be, u32le } from './framing';
import { LinkType } from './types';
import type { CaptureFormatSpec, ChunkParser, ParserContext } from './reader';

/** CAPUTILS_FILE_MAGIC 0x8f1ae247c53d9b6e, stored in the writer's byte order (0.7 only). */
const MAGIC_HI = 0x8f1ae247;
const MAGIC_LO = 0xc53d9b6e;
export const DPMI_HEADER_07 = 216; // magic 8, version 2+2, header_offset 2, comment_size 2, mpid 200
export const DPMI_HEADER_06 = 206; // comment_size 4, version 1+1, mpid 200
export const DPMI_HEADER_05 = 212; // comment_size 4, version 4+4, mpid 200
export const DPMI_RECORD_HEADER = 36; // nic 8, mampid 8, sec 4, psec 8, len 4, caplen 4
const MPID_LENGTH = 200;
const LOCATION_KEY_LENGTH = 16; // nic + mampid, the bytes that name a location
/** Legacy headers carry a 32-bit comment size; anything larger than this is not a DPMI trace. */
const MAX_LEGACY_COMMENT = 0xffff;
/** Largest frame accepted: pcap2cap's default caplen is 65535 - 36; jumbo-frame MPs stay below. */
export const DPMI_MAX_CAPLEN = 256 * 1024;
const PS_PER_SEC = 1_000_000_000_000;
const TWO_POW_32 = 0x100000000;

export interface DpmiFileHeader {
  readonly version: { readonly major: number; readonly minor: number };
  readonly hasMagic: boolean; // 0.7 and later: magic + header_offset; 0.5/0.6: legacy layouts
  readonly littleEndian: boolean;
  /** Where the comment starts (0.7: header_offset, which may exceed 216 for newer headers). */
  readonly headerLength: number;
  readonly commentLength: number;
  readonly mpid: string; // measurement point id(s) of the trace, from the file header
}

/** What the first bytes say: version and byte order, or undefined when not a DPMI trace. */
function identify(head: Uint8Array): { major: number; minor: number; le: boolean; magic: boolean } | undefined {
  if (head.length >= 8) {
    // Version fields may be missing from a truncated head: reported once the header is parsed.
    const version = (le: boolean) => ({ major: head.length >= 10 ? u16(head, 8, le) : 0, minor: head.length >= 12 ? u16(head, 10, le) : 7 });
    if (u32le(head, 4) === MAGIC_HI && u32le(head, 0) === MAGIC_LO) return { ...version(true), le: true, magic: true };
    if (u32be(head, 0) === MAGIC_HI && u32be(head, 4) === MAGIC_LO) return { ...version(false), le: false, magic: true };
  }
  // Legacy headers have no magic: the version field is the only signature (as libcap_utils checks).
  if (head.length >= 12 && u32le(head, 4) === 0) {
    // 0.5: uint32 major = 0, uint32 minor = 5, in the writer's byte order.
    if (u32le(head, 8) === 5 && u32le(head, 0) <= MAX_LEGACY_COMMENT) return { major: 0, minor: 5, le: true, magic: false };
    if (u32be(head, 8) === 5 && u32be(head, 0) <= MAX_LEGACY_COMMENT) return { major: 0, minor: 5, le: false, magic: false };
  }
  if (head.length >= 6 && head[4] === 0 && head[5] === 6) {
    // 0.6: uint8 version, so only the comment size hints at the byte order: the smaller reading.
    const le = u32le(head, 0);
    const be = u32be(head, 0);
    if (Math.min(le, be) <= MAX_LEGACY_COMMENT) return { major: 0, minor: 6, le: le <= be, magic: false };
  }
  return undefined;
}

function u16(b: Uint8Array, o: number, le: boolean): number {
  return le ? b[o] | (b[o + 1] << 8) : (b[o] << 8) | b[o + 1];
}

/** A NUL-terminated (or full-width) C string field. */
function cString(b: Uint8Array, from: number, length: number, encoding: BufferEncoding = 'latin1'): string {
  let end = from;
  const limit = Math.min(b.length, from + length);
  while (end < limit && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + from, end - from).toString(encoding);
}

/**
 * Decodes the fixed part of a DPMI file header (needs the first 216 bytes, or the whole input
 * when shorter). Returns undefined when the bytes are not a DPMI trace.
 */
export function parseDpmiFileHeader(head: Uint8Array): DpmiFileHeader | undefined {
  const id = identify(head);
  if (!id) return undefined;
  const { major, minor, le } = id;
  if (!id.magic && minor === 5) {
    return { version: { major, minor }, hasMagic: false, littleEndian: le, headerLength: DPMI_HEADER_05, commentLength: u32(head, 0, le), mpid: cString(head, 12, MPID_LENGTH) };
  }
  if (!id.magic) {
    return { version: { major, minor }, hasMagic: false, littleEndian: le, headerLength: DPMI_HEADER_06, commentLength: u32(head, 0, le), mpid: cString(head, 6, MPID_LENGTH) };
  }
  return {
    version: { major, minor },
    hasMagic: true,
    littleEndian: le,
    headerLength: head.length >= 14 ? u16(head, 12, le) : DPMI_HEADER_07,
    commentLength: head.length >= 16 ? u16(head, 14, le) : 0,
    mpid: cString(head, 16, MPID_LENGTH),
  };
}

export const dpmiFormat: CaptureFormatSpec = {
  name: 'dpmi',
  sniff(head) {
    return identify(head) !== undefined;
  },
  createParser(ctx: ParserContext): ChunkParser {
    return new DpmiParser(ctx);
  },
};

/** A location's interface, found by the 16 name bytes of the capture header. */
interface Location {
  readonly key: Uint8Array;
  readonly interfaceId: number;
}

class DpmiParser extends RecordFramer {
  private header: DpmiFileHeader | undefined;
  private headerDone = false;
  private newerVersionNoted = false;
  private orderUnsure = false;
  private oversized = 0; // records with caplen > len
  private lastOffset = 0; // input offset after the last complete record
  private le = true;
  private readonly locations = new Map<string, Location>();
  private last: Location | undefined; // consecutive frames almost always share a location

  constructor(ctx: ParserContext) {
    super(ctx, DPMI_RECORD_HEADER);
  }

  protected override recordLength(buf: Uint8Array, pos: number, inputOffset: number): number {
    if (!this.headerDone) return this.fileHeaderLength(buf, pos);
    if (this.orderUnsure) this.settleByteOrder(buf, pos);
    const caplen = u32(buf, pos + 32, this.le);
    return this.checkCaplen(caplen, inputOffset) ? DPMI_RECORD_HEADER + caplen : -1;
  }

  protected override describeTruncation(have: number, need: number): string {
    if (!this.headerDone) {
      const h = this.header;
      if (!h || need === 0) return `input ends inside the DPMI file header: ${have} bytes present`;
      if (have < h.headerLength) return `input ends inside the DPMI ${h.version.major}.${h.version.minor} file header: ${have} of ${h.headerLength} bytes present`;
      return `comment size ${h.commentLength} goes past the end of the input: comment at byte ${h.headerLength}, only ${have - h.headerLength} bytes of it present`;
    }
    return super.describeTruncation(have, need);
  }

  /** Header + comment length, from the start of the input (≥ 36 bytes present). */
  private fileHeaderLength(buf: Uint8Array, pos: number): number {
    const head = buf.subarray(pos, pos + DPMI_HEADER_07);
    const header = parseDpmiFileHeader(head);
    if (!header) {
      this.ctx.problem('unreadable', 'not a DPMI trace', 0, true);
      return -1;
    }
    this.header = header;
    this.le = header.littleEndian;
    const { major, minor } = header.version;
    if (header.hasMagic && (major !== 0 || minor < 7)) {
      this.ctx.problem('unsupported', `DPMI trace version ${major}.${minor} after the 0.7 magic (known: 0.5, 0.6, 0.7)`, 8, true);
      return -1;
    }
    if (header.hasMagic && minor > 7 && !this.newerVersionNoted) {
      // header_offset exists so that newer headers can grow: skip what we do not know.
      this.newerVersionNoted = true;
      this.ctx.problem('unsupported', `DPMI trace version ${major}.${minor} is newer than 0.7: header bytes ${DPMI_HEADER_07}..${header.headerLength} skipped`, 8, false);
    }
    if (header.hasMagic && header.headerLength < DPMI_HEADER_07) {
      this.ctx.problem('corrupt', `header_offset ${header.headerLength} is smaller than the 0.7 header (${DPMI_HEADER_07} bytes)`, 12, true);
      return -1;
    }
    return header.headerLength + header.commentLength;
  }

  private checkCaplen(caplen: number, inputOffset: number): boolean {
    if (caplen === 0) {
      this.ctx.problem('corrupt', 'record with captured length 0', inputOffset, true);
      return false;
    }
    if (caplen > DPMI_MAX_CAPLEN) {
      this.ctx.problem('corrupt', `record with captured length ${caplen} (limit ${DPMI_MAX_CAPLEN})`, inputOffset, true);
      return false;
    }
    return true;
  }

  private finishHeader(buf: Uint8Array, pos: number): void {
    const h = this.header!;
    const commentStart = pos + h.headerLength;
    const comment = cString(buf, commentStart, h.commentLength, 'utf8');
    if (comment.length > 0) this.ctx.setComment(comment);
    this.headerDone = true;
    this.orderUnsure = !h.hasMagic && h.version.minor === 6 && h.commentLength === 0;
  }

  protected override parseRun(buf: Uint8Array, pos: number, end: number, base: number): number {
    const ctx = this.ctx;
    if (!this.headerDone) {
      if (pos + DPMI_RECORD_HEADER > end) return pos;
      const length = this.fileHeaderLength(buf, pos);
      if (length < 0) return pos;
      if (pos + length > end) return pos;
      this.finishHeader(buf, pos);
      pos += length;
    }
    if (this.orderUnsure && pos + DPMI_RECORD_HEADER <= end) this.settleByteOrder(buf, pos);
    const le = this.le;
    const sink = ctx.sink;
    const record = ctx.record;
    record.buf = buf;
    record.linkType = LinkType.ETHERNET;
    let location = this.last;
    while (pos + DPMI_RECORD_HEADER <= end) {
      const caplen = u32(buf, pos + 32, le);
      if (caplen === 0 || caplen > DPMI_MAX_CAPLEN) {
        this.checkCaplen(caplen, base + pos);
        this.last = location;
        return pos;
      }
      const next = pos + DPMI_RECORD_HEADER + caplen;
      if (next > end) break;
      if (location === undefined || !sameKey(location.key, buf, pos)) location = this.location(buf, pos);
      let wirelen = u32(buf, pos + 28, le);
      let frameLength = caplen;
      if (wirelen < caplen) {
        frameLength = this.oversizedCapture(caplen, wirelen, base + pos);
        if (wirelen === 0) wirelen = caplen;
      }
      let sec = u32(buf, pos + 16, le);
      const lo = u32(buf, pos + (le ? 20 : 24), le);
      const hi = u32(buf, pos + (le ? 24 : 20), le);
      let ps = lo;
      if (hi !== 0) {
        ps = hi * TWO_POW_32 + lo;
        if (ps >= PS_PER_SEC) {
          const t = normalise(sec, hi, lo);
          sec = t.sec;
          ps = t.ps;
        }
      }
      record.sec = sec;
      record.ps = ps;
      record.caplen = frameLength;
      record.wirelen = wirelen;
      record.interfaceId = location.interfaceId;
      record.offset = pos + DPMI_RECORD_HEADER;
      record.fileOffset = base + pos;
      record.index = ++ctx.packets;
      sink.packet(record);
      pos = next;
    }
    this.lastOffset = base + pos;
    this.last = location;
    return pos;
  }

  /**
   * caplen > len. Real MPs write this (e.g. 64 bytes captured of a 60-byte frame: padding or the
   * FCS), and capinfo counts len. The framing is intact (caplen sizes the record), so the frame is
   * passed on cut to its wire length; a zero wire length cannot be right and is taken as caplen.
   * Reported once with its place, then counted; the count is reported at the end.
   */
  private oversizedCapture(caplen: number, wirelen: number, offset: number): number {
    if (this.oversized++ === 0) {
      const what = wirelen === 0 ? `wire length 0 taken as ${caplen}` : `the ${caplen - wirelen} bytes past the wire length (padding or FCS) are not passed on`;
      this.ctx.problem('corrupt', `captured length ${caplen} exceeds wire length ${wirelen}: ${what}; later such records are only counted`, offset, false);
    }
    return wirelen === 0 ? caplen : wirelen;
  }

  override finish(): void {
    super.finish();
    if (this.oversized > 1) {
      this.ctx.problem('corrupt', `${this.oversized} records in all had a captured length above their wire length (cut to the wire length)`, this.lastOffset, false, this.ctx.packets);
    }
  }

  /** A 0.6 header with an empty comment says nothing about byte order: ask the first record. */
  private settleByteOrder(buf: Uint8Array, pos: number): void {
    this.orderUnsure = false;
    const plausible = (le: boolean) => {
      const caplen = u32(buf, pos + 32, le);
      return caplen > 0 && caplen <= DPMI_MAX_CAPLEN && u32(buf, pos + 28, le) >= caplen;
    };
    if (!plausible(this.le) && plausible(!this.le)) this.le = !this.le;
  }

  private location(buf: Uint8Array, pos: number): Location {
    // A copy: `buf` may be a Buffer, whose slice() is a view into the reader's reused chunk.
    const key = Uint8Array.prototype.slice.call(buf, pos, pos + LOCATION_KEY_LENGTH);
    const text = Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
    let location = this.locations.get(text);
    if (!location) {
      const nic = cString(key, 0, 8);
      const mampid = cString(key, 8, 8);
      const iface = this.ctx.addInterface({
        linkType: LinkType.ETHERNET,
        snaplen: 0, // DPMI traces do not record a snaplen
        tsDigits: 12,
        name: `${mampid}:${nic}`,
        description: `DPMI measurement point ${mampid}, capture interface ${nic} (trace mpid ${this.header?.mpid ?? ''})`,
      });
      location = { key, interfaceId: iface.id };
      this.locations.set(text, location);
    }
    return location;
  }
}

function sameKey(key: Uint8Array, buf: Uint8Array, pos: number): boolean {
  for (let i = 0; i < LOCATION_KEY_LENGTH; i++) if (key[i] !== buf[pos + i]) return false;
  return true;
}

/** A picosecond field of a second or more (never written by the library, but representable). */
function normalise(sec: number, hi: number, lo: number): { sec: number; ps: number } {
  const total = (BigInt(hi) << 32n) | BigInt(lo);
  const P = BigInt(PS_PER_SEC);
  return { sec: sec + Number(total / P), ps: Number(total % P) };
}
