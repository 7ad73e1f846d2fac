// Streaming pcapng writer (SHB, IDBs, EPBs) for `convert` and live `--write`: blocks go into one
// reused buffer that is flushed to the output when full, so memory stays bounded. Each interface
// gets the if_tsresol its timestamps need (10^-6, 10^-9 or 10^-12), so nothing is rounded;
// picosecond interfaces also get an if_tsoffset, since 64 bits of picoseconds since 1970 overflow
// after 213 days. Format: IETF draft-ietf-opsawg-pcapng.
import * as fs from 'node:fs';
import { PS_PER_SEC, type TimestampDigits } from '../core/timestamp';

const BLOCK_SHB = 0x0a0d0d0a;
const BLOCK_IDB = 0x00000001;
const BLOCK_EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const OPT_END = 0;
const OPT_COMMENT = 1;
const SHB_HARDWARE = 2;
const SHB_OS = 3;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;
const IF_TSOFFSET = 14;
const BUFFER_SIZE = 1 << 20;
/** if_tsoffset is placed this long before the first packet, so that slightly earlier packets of a
 *  merged, not quite sorted trace still get non-negative timestamps. */
const TSOFFSET_MARGIN_SEC = 86_400;

export interface PcapngSectionInfo {
  readonly comment?: string; // shb_comment (the source capture's comment)
  readonly userAppl?: string; // shb_userappl
  readonly hardware?: string;
  readonly os?: string;
}

export interface PcapngInterfaceInfo {
  readonly linkType: number;
  readonly snaplen?: number; // 0 = unknown / no limit
  /** Fraction digits the timestamps carry (6, 9 or 12; any 0..12). */
  readonly tsDigits: TimestampDigits;
  readonly name?: string; // if_name
  readonly description?: string; // if_description
}

/** Where the bytes go: a function that consumes each flushed chunk (valid only during the call). */
export type ByteOutput = (chunk: Uint8Array) => void;

interface WriterInterface {
  readonly info: PcapngInterfaceInfo;
  readonly unitsPerSec: bigint;
  readonly psPerUnit: number; // > 0 when units divide picoseconds (all digits ≤ 12)
  tsOffset: number; // seconds, set when the IDB is written
  written: boolean;
}

export class PcapngWriter {
  private buffer = Buffer.allocUnsafe(BUFFER_SIZE);
  private used = 0;
  private readonly interfaces: WriterInterface[] = [];
  private headerWritten = false;
  private closed = false;
  private packets = 0;
  private bytesOut = 0;
  /** if_tsoffset for interfaces finer than ns: a day boundary ≥ 1 day before the first packet. */
  private picoOffset: number | undefined;

  constructor(private readonly output: ByteOutput, private readonly section: PcapngSectionInfo = {}) {}

  /** A writer to a file path ('-' = stdout), writing synchronously through a 1 MiB buffer. */
  static toFile(path: string, section: PcapngSectionInfo = {}): PcapngWriter & { readonly fd: number } {
    const fd = path === '-' ? 1 : fs.openSync(path, 'w');
    const writer = new PcapngWriter((chunk) => writeFully(fd, chunk), section) as PcapngWriter & { fd: number };
    writer.fd = fd;
    const close = writer.close.bind(writer);
    writer.close = () => {
      close();
      if (fd !== 1) fs.closeSync(fd);
    };
    return writer;
  }

  get packetCount(): number {
    return this.packets;
  }
  /** Bytes handed to the output so far (flushed). */
  get bytesWritten(): number {
    return this.bytesOut;
  }

  /** Declares an interface and returns its pcapng interface id (0, 1, … in call order). Its IDB
   *  is written before its first packet (or at close): picosecond interfaces wait for the first
   *  packet's time to choose if_tsoffset. */
  addInterface(info: PcapngInterfaceInfo): number {
    if (this.closed) throw new Error('pcapng writer: addInterface after close');
    const digits = Math.max(0, Math.min(12, Math.round(info.tsDigits)));
    const unitsPerSec = 10n ** BigInt(digits);
    this.interfaces.push({ info: { ...info, tsDigits: digits }, unitsPerSec, psPerUnit: PS_PER_SEC / 10 ** digits, tsOffset: 0, written: false });
    return this.interfaces.length - 1;
  }

  /**
   * Appends one frame. Timestamps finer than the interface's resolution are truncated (never
   * when tsDigits matches the source). Throws on an unknown interface or a time that the
   * interface cannot represent (before its if_tsoffset).
   */
  writePacket(interfaceId: number, sec: number, ps: number, data: Uint8Array, wirelen: number = data.length, comment?: string): void {
    const iface = this.interfaces[interfaceId];
    if (!iface) throw new Error(`pcapng writer: no interface ${interfaceId}`);
    // The first packet of the file, on any interface, fixes the offset of all picosecond ones.
    this.picoOffset ??= Math.max(0, Math.floor((sec - TSOFFSET_MARGIN_SEC) / 86_400) * 86_400);
    if (!iface.written) this.writeInterfacesUpTo(interfaceId);
    const units = this.units(iface, sec, ps);
    const commentBytes = comment ? Buffer.from(comment, 'utf8') : undefined;
    const dataPadded = pad4(data.length);
    const optionsLength = commentBytes ? 4 + pad4(commentBytes.length) + 4 : 0;
    const total = 12 + 20 + dataPadded + optionsLength;
    const b = this.reserve(total);
    let at = this.used;
    b.writeUInt32LE(BLOCK_EPB, at);
    b.writeUInt32LE(total, at + 4);
    b.writeUInt32LE(interfaceId, at + 8);
    b.writeUInt32LE(Number(units >> 32n), at + 12);
    b.writeUInt32LE(Number(units & 0xffffffffn), at + 16);
    b.writeUInt32LE(data.length, at + 20);
    b.writeUInt32LE(Math.max(wirelen, data.length), at + 24);
    b.set(data, at + 28);
    b.fill(0, at + 28 + data.length, at + 28 + dataPadded);
    at += 28 + dataPadded;
    if (commentBytes) at = writeOption(b, at, OPT_COMMENT, commentBytes, true);
    b.writeUInt32LE(total, at);
    this.used += total;
    this.packets++;
  }

  /** Writes pending headers, flushes the buffer. Further calls throw; closing twice is harmless. */
  close(): void {
    if (this.closed) return;
    if (this.interfaces.length > 0) this.writeInterfacesUpTo(this.interfaces.length - 1);
    else this.writeSectionHeader();
    this.flush();
    this.closed = true;
  }

  flush(): void {
    if (this.used === 0) return;
    this.output(this.buffer.subarray(0, this.used));
    this.bytesOut += this.used;
    this.used = 0;
  }

  private units(iface: WriterInterface, sec: number, ps: number): bigint {
    const whole = sec - iface.tsOffset;
    if (whole < 0) throw new RangeError(`pcapng writer: timestamp ${sec} s is before interface if_tsoffset ${iface.tsOffset} s`);
    // Integer units: exact for every power-of-ten resolution up to picoseconds.
    const fraction = BigInt(Math.floor(ps / iface.psPerUnit));
    const units = BigInt(whole) * iface.unitsPerSec + fraction;
    if (units >= 1n << 64n) throw new RangeError(`pcapng writer: timestamp ${sec} s does not fit 64 bits at 10^-${iface.info.tsDigits} s`);
    return units;
  }

  /** IDBs must precede the packets that use them; ids follow declaration order, so every interface
   *  declared up to `id` is written now. */
  private writeInterfacesUpTo(id: number): void {
    this.writeSectionHeader();
    for (let i = 0; i <= id; i++) {
      const iface = this.interfaces[i];
      if (iface.written) continue;
      if (iface.info.tsDigits > 9) {
        // 2^64 units at 10^-10 s and finer cover less than 60 years: count from an offset.
        iface.tsOffset = this.picoOffset ?? 0;
      }
      this.writeInterfaceBlock(iface);
      iface.written = true;
    }
  }

  private writeSectionHeader(): void {
    if (this.headerWritten) return;
    this.headerWritten = true;
    const options: [number, Buffer][] = [];
    const s = this.section;
    if (s.comment) options.push([OPT_COMMENT, Buffer.from(s.comment, 'utf8')]);
    if (s.hardware) options.push([SHB_HARDWARE, Buffer.from(s.hardware, 'utf8')]);
    if (s.os) options.push([SHB_OS, Buffer.from(s.os, 'utf8')]);
    if (s.userAppl) options.push([SHB_USERAPPL, Buffer.from(s.userAppl, 'utf8')]);
    const total = 12 + 16 + optionsSize(options);
    const b = this.reserve(total);
    let at = this.used;
    b.writeUInt32LE(BLOCK_SHB, at);
    b.writeUInt32LE(total, at + 4);
    b.writeUInt32LE(BYTE_ORDER_MAGIC, at + 8);
    b.writeUInt16LE(1, at + 12); // version 1.0
    b.writeUInt16LE(0, at + 14);
    b.writeInt32LE(-1, at + 16); // section length unknown (streaming)
    b.writeInt32LE(-1, at + 20);
    at = writeOptions(b, at + 24, options);
    b.writeUInt32LE(total, at);
    this.used += total;
  }

  private writeInterfaceBlock(iface: WriterInterface): void {
    const { info } = iface;
    const options: [number, Buffer][] = [];
    if (info.name) options.push([IF_NAME, Buffer.from(info.name, 'utf8')]);
    if (info.description) options.push([IF_DESCRIPTION, Buffer.from(info.description, 'utf8')]);
    if (info.tsDigits !== 6) options.push([IF_TSRESOL, Buffer.from([info.tsDigits])]); // 6 is the default
    if (iface.tsOffset !== 0) {
      const offset = Buffer.alloc(8);
      offset.writeBigInt64LE(BigInt(iface.tsOffset));
      options.push([IF_TSOFFSET, offset]);
    }
    const total = 12 + 8 + optionsSize(options);
    const b = this.reserve(total);
    let at = this.used;
    b.writeUInt32LE(BLOCK_IDB, at);
    b.writeUInt32LE(total, at + 4);
    b.writeUInt16LE(info.linkType, at + 8);
    b.writeUInt16LE(0, at + 10);
    b.writeUInt32LE(info.snaplen ?? 0, at + 12);
    at = writeOptions(b, at + 16, options);
    b.writeUInt32LE(total, at);
    this.used += total;
  }

  /** Room for `size` more bytes in the buffer (flushing first, or growing for one huge block). */
  private reserve(size: number): Buffer {
    if (this.closed) throw new Error('pcapng writer: write after close');
    if (this.used + size > this.buffer.length) {
      this.flush();
      if (size > this.buffer.length) this.buffer = Buffer.allocUnsafe(size);
    }
    return this.buffer;
  }
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function optionsSize(options: readonly [number, Buffer][]): number {
  if (options.length === 0) return 0;
  let size = 4; // opt_endofopt
  for (const [, value] of options) size += 4 + pad4(value.length);
  return size;
}

function writeOptions(b: Buffer, at: number, options: readonly [number, Buffer][]): number {
  if (options.length === 0) return at;
  for (const [code, value] of options) at = writeOption(b, at, code, value, false);
  b.writeUInt32LE(OPT_END, at);
  return at + 4;
}

function writeOption(b: Buffer, at: number, code: number, value: Uint8Array, withEnd: boolean): number {
  b.writeUInt16LE(code, at);
  b.writeUInt16LE(value.length, at + 2);
  b.set(value, at + 4);
  b.fill(0, at + 4 + value.length, at + 4 + pad4(value.length));
  at += 4 + pad4(value.length);
  if (withEnd) {
    b.writeUInt32LE(OPT_END, at);
    at += 4;
  }
  return at;
}

/** writeSync until every byte is out (pipes may take a chunk in parts, or say EAGAIN). */
function writeFully(fd: number, chunk: Uint8Array): void {
  let done = 0;
  while (done < chunk.length) {
    try {
      done += fs.writeSync(fd, chunk, done, chunk.length - done);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5); // the pipe is full: wait briefly
    }
  }
}
