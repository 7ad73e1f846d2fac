// pcapng (IETF draft-ietf-opsawg-pcapng): a sequence of blocks (type, total length, body,
// total length again). Each Section Header Block starts a section with its own byte order and its
// own interface list; EPB, SPB and the obsolete OPB carry packets; every other block is skipped by
// its length. Interface ids are renumbered to be unique across sections.
import { PS_PER_SEC } from '../core/timestamp';
import { RecordFramer, hex32, i64, u16, u32, u32be } from './framing';
import { MAX_CAPLEN } from './pcap';
import type { CaptureFormatSpec, ChunkParser, ParserContext } from './reader';

const BLOCK_SHB = 0x0a0d0d0a;
const BLOCK_IDB = 0x00000001;
const BLOCK_OPB = 0x00000002;
const BLOCK_SPB = 0x00000003;
const BLOCK_EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const BYTE_ORDER_MAGIC_SWAPPED = 0x4d3c2b1a;
const MIN_BLOCK = 12;
/** Longest block we buffer: a maximal packet plus generous room for options (a longer one is
 *  taken for a corrupt length, which keeps memory bounded). */
export const MAX_BLOCK = 16 * 1024 * 1024;

const OPT_ENDOFOPT = 0;
const OPT_COMMENT = 1;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;
const IF_TSOFFSET = 14;

export const pcapngFormat: CaptureFormatSpec = {
  name: 'pcapng',
  sniff(head) {
    return head.length >= 4 && u32be(head, 0) === BLOCK_SHB;
  },
  createParser(ctx: ParserContext): ChunkParser {
    return new PcapngParser(ctx);
  },
};

/** How one interface's 64-bit timestamps become {sec, ps}. */
interface InterfaceClock {
  readonly id: number; // capture-wide id
  readonly linkType: number;
  readonly snaplen: number;
  readonly power2: boolean; // if_tsresol with the high bit set: units of 2^-exponent s
  readonly exponent: number;
  readonly unitsPerSec: number; // 10^exponent or 2^exponent
  readonly offsetSec: number; // if_tsoffset
}

class PcapngParser extends RecordFramer {
  private le = true;
  private sectionSeen = false;
  private interfaces: InterfaceClock[] = []; // of the current section, by local id
  private lastSec = 0; // for SPB, which carries no timestamp
  private lastPs = 0;

  constructor(ctx: ParserContext) {
    super(ctx, MIN_BLOCK);
  }

  protected override recordLength(buf: Uint8Array, pos: number, inputOffset: number): number {
    const type = u32(buf, pos, this.le);
    let le = this.le;
    if (type === BLOCK_SHB) {
      // The section's byte order is what its own magic says, whatever came before.
      const magic = u32be(buf, pos + 8);
      if (magic === BYTE_ORDER_MAGIC) le = false;
      else if (magic === BYTE_ORDER_MAGIC_SWAPPED) le = true;
      else {
        this.ctx.problem('corrupt', `section header block with byte-order magic ${hex32(magic)}`, inputOffset, true);
        return -1;
      }
    } else if (!this.sectionSeen) {
      this.ctx.problem('corrupt', `block type ${hex32(type)} before any section header block`, inputOffset, true);
      return -1;
    }
    const length = u32(buf, pos + 4, le);
    if (length < MIN_BLOCK || length % 4 !== 0 || length > MAX_BLOCK) {
      this.ctx.problem('corrupt', `block type ${hex32(type)} with total length ${length} (must be a multiple of 4, 12..${MAX_BLOCK})`, inputOffset, true);
      return -1;
    }
    return length;
  }

  protected override parseRun(buf: Uint8Array, pos: number, end: number, base: number): number {
    const ctx = this.ctx;
    while (pos + MIN_BLOCK <= end) {
      const length = this.recordLength(buf, pos, base + pos);
      if (length < 0) return pos;
      if (pos + length > end) break;
      const type = u32(buf, pos, this.le);
      if (type === BLOCK_SHB) this.startSection(buf, pos, length, base);
      const le = this.le;
      const trailer = u32(buf, pos + length - 4, le);
      if (trailer !== length) {
        ctx.problem('corrupt', `block type ${hex32(type)}: trailing length ${trailer} differs from leading length ${length}`, base + pos, true);
        return pos;
      }
      if (type === BLOCK_EPB || type === BLOCK_OPB) {
        const epb = type === BLOCK_EPB;
        const localId = epb ? u32(buf, pos + 8, le) : u16(buf, pos + 8, le);
        this.packet(buf, pos, length, base, localId, u32(buf, pos + 12, le), u32(buf, pos + 16, le), u32(buf, pos + 20, le), u32(buf, pos + 24, le), 28);
      } else if (type === BLOCK_SPB) {
        this.simplePacket(buf, pos, length, base);
      } else if (type === BLOCK_IDB) {
        this.addInterface(buf, pos, length, base);
      }
      if (ctx.stopped) return pos;
      pos += length;
    }
    return pos;
  }

  private packet(
    buf: Uint8Array, pos: number, length: number, base: number,
    localId: number, tsHigh: number, tsLow: number, caplen: number, wirelen: number, dataAt: number,
  ): void {
    const ctx = this.ctx;
    const iface = this.interfaces[localId];
    if (iface === undefined) {
      ctx.problem('corrupt', `packet block for interface ${localId}, which this section does not define`, base + pos, false);
      return;
    }
    if (caplen > MAX_CAPLEN || dataAt + caplen + 4 > length) {
      ctx.problem('corrupt', `packet block with captured length ${caplen} in a block of ${length} bytes`, base + pos, false);
      return;
    }
    const record = ctx.record;
    this.setTime(iface, tsHigh, tsLow);
    record.buf = buf;
    record.offset = pos + dataAt;
    record.caplen = caplen;
    record.wirelen = wirelen;
    record.interfaceId = iface.id;
    record.linkType = iface.linkType;
    record.fileOffset = base + pos;
    record.index = ++ctx.packets;
    ctx.sink.packet(record);
  }

  private simplePacket(buf: Uint8Array, pos: number, length: number, base: number): void {
    const iface = this.interfaces[0];
    if (iface === undefined) {
      this.ctx.problem('corrupt', 'simple packet block in a section without interface 0', base + pos, false);
      return;
    }
    const wirelen = u32(buf, pos + 8, this.le);
    // The captured length is implied: the original length cut to the snaplen and to the block.
    let caplen = Math.min(wirelen, length - 16);
    if (iface.snaplen > 0) caplen = Math.min(caplen, iface.snaplen);
    const record = this.ctx.record;
    record.sec = this.lastSec; // SPB has no timestamp: keep the previous packet's time
    record.ps = this.lastPs;
    record.buf = buf;
    record.offset = pos + 12;
    record.caplen = caplen;
    record.wirelen = wirelen;
    record.interfaceId = iface.id;
    record.linkType = iface.linkType;
    record.fileOffset = base + pos;
    record.index = ++this.ctx.packets;
    this.ctx.sink.packet(record);
  }

  /** ts = tsHigh·2^32 + tsLow units of the interface's resolution, exact to the picosecond for
   *  power-of-ten resolutions. */
  private setTime(iface: InterfaceClock, tsHigh: number, tsLow: number): void {
    let sec: number;
    let fraction: number; // in units, < unitsPerSec
    const units = iface.unitsPerSec;
    if (iface.power2) {
      const e = iface.exponent;
      if (e <= 32) {
        const span = 2 ** e;
        sec = tsHigh * 2 ** (32 - e) + Math.floor(tsLow / span);
        fraction = tsLow % span;
      } else {
        const span = 2 ** (e - 32);
        sec = Math.floor(tsHigh / span);
        fraction = (tsHigh % span) * 0x100000000 + tsLow;
      }
    } else if (tsHigh < 0x200000) {
      // The whole count is below 2^53: plain double arithmetic is exact.
      const total = tsHigh * 0x100000000 + tsLow;
      sec = Math.floor(total / units);
      fraction = total - sec * units;
      if (fraction < 0) { sec -= 1; fraction += units; } // the float quotient rounded up
    } else if (units <= 1e11) {
      // Long division in two 16-bit steps keeps every intermediate below 2^53.
      const upper = tsHigh * 0x10000 + (tsLow >>> 16); // < 2^48
      let q1 = Math.floor(upper / units);
      let r1 = upper - q1 * units;
      if (r1 < 0) { q1 -= 1; r1 += units; } // the float quotient rounded up
      const lower = r1 * 0x10000 + (tsLow & 0xffff); // < units·2^16 ≤ 2^53
      let q2 = Math.floor(lower / units);
      fraction = lower - q2 * units;
      if (fraction < 0) { q2 -= 1; fraction += units; }
      sec = q1 * 0x10000 + q2;
    } else {
      const total = (BigInt(tsHigh) << 32n) | BigInt(tsLow);
      const u = BigInt(units);
      sec = Number(total / u);
      fraction = Number(total % u);
    }
    let ps: number;
    if (!iface.power2) ps = fraction * (PS_PER_SEC / units);
    // 2^-n resolutions are not whole picoseconds: round to the nearest one (half up). 10^12/2^n
    // = 5^12·2^(12-n) is exact in a double, and so is the product while it stays below 2^53.
    else if (iface.exponent <= 25) ps = Math.round(fraction * (PS_PER_SEC / units));
    else ps = Number((BigInt(fraction) * 2n * BigInt(PS_PER_SEC) + BigInt(units)) / (2n * BigInt(units)));
    if (ps >= PS_PER_SEC) { sec += 1; ps -= PS_PER_SEC; }
    sec += iface.offsetSec;
    const record = this.ctx.record;
    record.sec = this.lastSec = sec;
    record.ps = this.lastPs = ps;
  }

  private startSection(buf: Uint8Array, pos: number, length: number, base: number): void {
    this.le = u32be(buf, pos + 8) === BYTE_ORDER_MAGIC_SWAPPED;
    this.sectionSeen = true;
    this.interfaces = [];
    // body: magic(4) major(2) minor(2) section length(8), then options
    const major = u16(buf, pos + 12, this.le);
    if (major !== 1) {
      this.ctx.problem('unsupported', `pcapng section version ${major}.${u16(buf, pos + 14, this.le)} (only 1.x is defined)`, base + pos, true);
      return;
    }
    this.readOptions(buf, pos + 24, pos + length - 4, base, (code, at, len) => {
      if (code === OPT_COMMENT) this.ctx.setComment(utf8(buf, at, len));
    });
  }

  private addInterface(buf: Uint8Array, pos: number, length: number, base: number): void {
    const le = this.le;
    if (length < 20) {
      this.ctx.problem('corrupt', `interface description block of ${length} bytes (at least 20)`, base + pos, false);
      return;
    }
    const linkType = u16(buf, pos + 8, le);
    const snaplen = u32(buf, pos + 12, le);
    let power2 = false;
    let exponent = 6;
    let offsetSec = 0;
    let name: string | undefined;
    let description: string | undefined;
    this.readOptions(buf, pos + 16, pos + length - 4, base, (code, at, len) => {
      if (code === IF_TSRESOL && len >= 1) {
        power2 = (buf[at] & 0x80) !== 0;
        exponent = buf[at] & 0x7f;
      } else if (code === IF_TSOFFSET && len >= 8) {
        offsetSec = i64(buf, at, le);
      } else if (code === IF_NAME) {
        name = utf8(buf, at, len);
      } else if (code === IF_DESCRIPTION || code === OPT_COMMENT) {
        description = description === undefined ? utf8(buf, at, len) : `${description}\n${utf8(buf, at, len)}`;
      }
    });
    if ((power2 && exponent > 52) || (!power2 && exponent > 12)) {
      // Finer than a picosecond (or than a double holds): keep reading, with the clock clamped.
      this.ctx.problem('unsupported', `interface with if_tsresol ${power2 ? '2' : '10'}^-${exponent}: timestamps clamped`, base + pos, false);
      exponent = power2 ? 52 : 12;
    }
    const tsDigits = power2 ? Math.min(12, Math.ceil(exponent * Math.log10(2))) : exponent;
    const iface = this.ctx.addInterface({ linkType, snaplen, tsDigits, name, description });
    this.interfaces.push({
      id: iface.id, linkType, snaplen, power2, exponent, unitsPerSec: power2 ? 2 ** exponent : 10 ** exponent, offsetSec,
    });
  }

  /** Calls `each(code, valueOffset, valueLength)` for the options in buf[from, to). */
  private readOptions(buf: Uint8Array, from: number, to: number, base: number, each: (code: number, at: number, length: number) => void): void {
    let at = from;
    while (at + 4 <= to) {
      const code = u16(buf, at, this.le);
      const len = u16(buf, at + 2, this.le);
      if (code === OPT_ENDOFOPT) return;
      if (at + 4 + len > to) {
        this.ctx.problem('corrupt', `option ${code} of ${len} bytes overruns its block`, base + at, false);
        return;
      }
      each(code, at + 4, len);
      at += 4 + ((len + 3) & ~3);
    }
  }
}

function utf8(buf: Uint8Array, at: number, length: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + at, length).toString('utf8').replace(/\0+$/, '');
}
