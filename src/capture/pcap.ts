// Classic libpcap files (tcpdump.org/manpages/pcap-savefile.5): a 24-byte file header, then
// records of a 16-byte header + frame. Microsecond (a1b2c3d4) and nanosecond (a1b23c4d) magics,
// either byte order. The hot loop reads headers in place and reuses one PacketRecord.
import { RecordFramer, u32, u32be } from './framing';
import type { CaptureFormatSpec, ChunkParser, ParserContext } from './reader';

const MAGIC_MICRO = 0xa1b2c3d4;
const MAGIC_NANO = 0xa1b23c4d;
const MAGIC_MICRO_SWAPPED = 0xd4c3b2a1;
const MAGIC_NANO_SWAPPED = 0x4d3cb2a1;
export const PCAP_FILE_HEADER = 24;
export const PCAP_RECORD_HEADER = 16;
/** Largest frame we accept (Wireshark's limit for most link types is 256 KiB as well). */
export const MAX_CAPLEN = 256 * 1024;

/** Largest plausible caplen for a file with this snaplen: twice the snaplen leaves room for
 *  writers that mis-state it, while a corrupt length (usually huge) is still caught early. */
export function caplenLimit(snaplen: number): number {
  return snaplen > 0 ? Math.min(MAX_CAPLEN, snaplen * 2 + 256) : MAX_CAPLEN;
}

export const pcapFormat: CaptureFormatSpec = {
  name: 'pcap',
  sniff(head) {
    if (head.length < 4) return false;
    const magic = u32be(head, 0);
    return magic === MAGIC_MICRO || magic === MAGIC_NANO || magic === MAGIC_MICRO_SWAPPED || magic === MAGIC_NANO_SWAPPED;
  },
  createParser(ctx: ParserContext): ChunkParser {
    return new PcapParser(ctx);
  },
};

class PcapParser extends RecordFramer {
  private headerSeen = false;
  private le = false;
  private psPerUnit = 1_000_000; // 1e6 for µs files, 1e3 for ns
  private unitsPerSec = 1_000_000;
  private limit = MAX_CAPLEN;
  private interfaceId = 0;
  private linkType = 0;

  constructor(ctx: ParserContext) {
    super(ctx, PCAP_RECORD_HEADER);
  }

  protected override recordLength(buf: Uint8Array, pos: number, inputOffset: number): number {
    if (!this.headerSeen) return PCAP_FILE_HEADER;
    const caplen = u32(buf, pos + 8, this.le);
    return this.checkCaplen(caplen, inputOffset) ? PCAP_RECORD_HEADER + caplen : -1;
  }

  protected override describeTruncation(have: number, need: number): string {
    if (!this.headerSeen) return `input ends inside the pcap file header: ${have} of ${PCAP_FILE_HEADER} bytes present`;
    return super.describeTruncation(have, need);
  }

  private checkCaplen(caplen: number, inputOffset: number): boolean {
    if (caplen === 0) {
      this.ctx.problem('corrupt', 'record with captured length 0', inputOffset, true);
      return false;
    }
    if (caplen > this.limit) {
      this.ctx.problem('corrupt', `record with captured length ${caplen} (limit ${this.limit} for this file)`, inputOffset, true);
      return false;
    }
    return true;
  }

  private parseFileHeader(buf: Uint8Array, pos: number): void {
    const magic = u32be(buf, pos);
    this.le = magic === MAGIC_MICRO_SWAPPED || magic === MAGIC_NANO_SWAPPED;
    const nano = magic === MAGIC_NANO || magic === MAGIC_NANO_SWAPPED;
    this.unitsPerSec = nano ? 1_000_000_000 : 1_000_000;
    this.psPerUnit = nano ? 1_000 : 1_000_000;
    const snaplen = u32(buf, pos + 16, this.le);
    // The upper 16 bits of the link-type field carry FCS information (pcap-savefile.5).
    this.linkType = u32(buf, pos + 20, this.le) & 0xffff;
    this.limit = caplenLimit(snaplen);
    const iface = this.ctx.addInterface({ linkType: this.linkType, snaplen, tsDigits: nano ? 9 : 6 });
    this.interfaceId = iface.id;
    this.headerSeen = true;
  }

  protected override parseRun(buf: Uint8Array, pos: number, end: number, base: number): number {
    const ctx = this.ctx;
    if (!this.headerSeen) {
      if (pos + PCAP_FILE_HEADER > end) return pos;
      this.parseFileHeader(buf, pos);
      pos += PCAP_FILE_HEADER;
    }
    const le = this.le;
    const limit = this.limit;
    const psPerUnit = this.psPerUnit;
    const unitsPerSec = this.unitsPerSec;
    const sink = ctx.sink;
    const record = ctx.record;
    record.buf = buf;
    record.interfaceId = this.interfaceId;
    record.linkType = this.linkType;
    while (pos + PCAP_RECORD_HEADER <= end) {
      const caplen = u32(buf, pos + 8, le);
      if (caplen === 0 || caplen > limit) {
        this.checkCaplen(caplen, base + pos);
        return pos;
      }
      const next = pos + PCAP_RECORD_HEADER + caplen;
      if (next > end) break;
      let sec = u32(buf, pos, le);
      let fraction = u32(buf, pos + 4, le);
      if (fraction >= unitsPerSec) {
        // Some writers leave an unnormalised fraction; carry it rather than exceed the second.
        sec += Math.floor(fraction / unitsPerSec);
        fraction %= unitsPerSec;
      }
      record.sec = sec;
      record.ps = fraction * psPerUnit;
      record.caplen = caplen;
      record.wirelen = u32(buf, pos + 12, le);
      record.offset = pos + PCAP_RECORD_HEADER;
      record.fileOffset = base + pos;
      record.index = ++ctx.packets;
      sink.packet(record);
      pos = next;
    }
    return pos;
  }
}


