// Writers for classic pcap and pcapng, independent of the readers (they share no code with
// them): used by tests to make format variants of real captures and by the benchmark generator.
// Not on any hot path of the analyzer.
import { PS_PER_SEC } from '../core/timestamp';

export interface FrameToWrite {
  readonly sec: number;
  readonly ps: number;
  readonly data: Uint8Array;
  readonly wirelen?: number; // default data.length
}

export interface PcapWriteOptions {
  readonly nanosecond?: boolean;
  readonly bigEndian?: boolean;
  readonly snaplen?: number; // default 262144
  readonly linkType?: number; // default 1 (Ethernet)
}

/** The 24-byte file header of a classic pcap. */
export function pcapFileHeader(options: PcapWriteOptions = {}): Buffer {
  const header = Buffer.alloc(24);
  const le = !options.bigEndian;
  const w32 = (v: number, at: number) => (le ? header.writeUInt32LE(v >>> 0, at) : header.writeUInt32BE(v >>> 0, at));
  const w16 = (v: number, at: number) => (le ? header.writeUInt16LE(v, at) : header.writeUInt16BE(v, at));
  w32(options.nanosecond ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  w16(2, 4);
  w16(4, 6);
  w32(0, 8);
  w32(0, 12);
  w32(options.snaplen ?? 262144, 16);
  w32(options.linkType ?? 1, 20);
  return header;
}

/** One record (16-byte header + frame); the timestamp is truncated to the file's resolution. */
export function pcapRecord(frame: FrameToWrite, options: PcapWriteOptions = {}): Buffer {
  const out = Buffer.alloc(16 + frame.data.length);
  const le = !options.bigEndian;
  const w32 = (v: number, at: number) => (le ? out.writeUInt32LE(v >>> 0, at) : out.writeUInt32BE(v >>> 0, at));
  w32(frame.sec, 0);
  w32(Math.floor(frame.ps / (options.nanosecond ? 1_000 : 1_000_000)), 4);
  w32(frame.data.length, 8);
  w32(frame.wirelen ?? frame.data.length, 12);
  out.set(frame.data, 16);
  return out;
}

export function encodePcap(frames: Iterable<FrameToWrite>, options: PcapWriteOptions = {}): Buffer {
  const parts = [pcapFileHeader(options)];
  for (const frame of frames) parts.push(pcapRecord(frame, options));
  return Buffer.concat(parts);
}

export interface PcapngInterfaceSpec {
  readonly linkType: number;
  readonly snaplen?: number; // default 0 (no limit)
  /** if_tsresol byte: 6 = µs (also the default when absent), 9 = ns, 0x80|n = 2^-n s. */
  readonly tsresol?: number;
  readonly tsoffset?: number; // if_tsoffset in seconds
  readonly name?: string;
  readonly description?: string;
}

export interface PcapngPacketSpec extends FrameToWrite {
  readonly interface: number; // index within the section
  readonly block?: 'epb' | 'spb' | 'opb'; // default epb
}

export interface PcapngSectionSpec {
  readonly bigEndian?: boolean;
  readonly comment?: string;
  readonly interfaces: readonly PcapngInterfaceSpec[];
  readonly packets: readonly PcapngPacketSpec[];
  /** Blocks of unknown/ignored types written after the interfaces (readers must skip them). */
  readonly otherBlocks?: readonly { readonly type: number; readonly body: Uint8Array }[];
}

/** Timestamp units of an interface for {sec, ps}: exact for 10^-n, truncated for 2^-n. */
export function pcapngUnits(spec: PcapngInterfaceSpec, sec: number, ps: number): bigint {
  const resol = spec.tsresol ?? 6;
  const exponent = BigInt(resol & 0x7f);
  const whole = BigInt(sec - (spec.tsoffset ?? 0));
  if (resol & 0x80) return (whole << exponent) + ((BigInt(ps) << exponent) / BigInt(PS_PER_SEC));
  const units = 10n ** exponent;
  return whole * units + (BigInt(ps) * units) / BigInt(PS_PER_SEC);
}

export function encodePcapng(sections: readonly PcapngSectionSpec[]): Buffer {
  const parts: Buffer[] = [];
  for (const section of sections) {
    const le = !section.bigEndian;
    const block = (type: number, body: Buffer) => {
      const padded = (body.length + 3) & ~3;
      const out = Buffer.alloc(12 + padded);
      const w32 = (v: number, at: number) => (le ? out.writeUInt32LE(v >>> 0, at) : out.writeUInt32BE(v >>> 0, at));
      w32(type, 0);
      w32(out.length, 4);
      body.copy(out, 8);
      w32(out.length, out.length - 4);
      parts.push(out);
    };
    const option = (code: number, value: Buffer) => {
      const out = Buffer.alloc(4 + ((value.length + 3) & ~3));
      if (le) { out.writeUInt16LE(code, 0); out.writeUInt16LE(value.length, 2); } else { out.writeUInt16BE(code, 0); out.writeUInt16BE(value.length, 2); }
      value.copy(out, 4);
      return out;
    };
    const endOfOptions = Buffer.alloc(4);
    const fixed = (size: number, fill: (b: Buffer, w32: (v: number, at: number) => void, w16: (v: number, at: number) => void) => void) => {
      const b = Buffer.alloc(size);
      fill(
        b,
        (v, at) => (le ? b.writeUInt32LE(v >>> 0, at) : b.writeUInt32BE(v >>> 0, at)),
        (v, at) => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at)),
      );
      return b;
    };

    const shbOptions = section.comment !== undefined ? [option(1, Buffer.from(section.comment)), endOfOptions] : [];
    block(0x0a0d0d0a, Buffer.concat([
      fixed(16, (b, w32, w16) => { w32(0x1a2b3c4d, 0); w16(1, 4); w16(0, 6); b.fill(0xff, 8, 16); }),
      ...shbOptions,
    ]));
    for (const iface of section.interfaces) {
      const options: Buffer[] = [];
      if (iface.name !== undefined) options.push(option(2, Buffer.from(iface.name)));
      if (iface.description !== undefined) options.push(option(3, Buffer.from(iface.description)));
      if (iface.tsresol !== undefined) options.push(option(9, Buffer.from([iface.tsresol])));
      if (iface.tsoffset !== undefined) {
        const v = Buffer.alloc(8);
        if (le) v.writeBigInt64LE(BigInt(iface.tsoffset)); else v.writeBigInt64BE(BigInt(iface.tsoffset));
        options.push(option(14, v));
      }
      if (options.length > 0) options.push(endOfOptions);
      block(1, Buffer.concat([fixed(8, (_b, w32, w16) => { w16(iface.linkType, 0); w16(0, 2); w32(iface.snaplen ?? 0, 4); }), ...options]));
    }
    for (const other of section.otherBlocks ?? []) block(other.type, Buffer.from(other.body));
    for (const packet of section.packets) {
      const iface = section.interfaces[packet.interface];
      const wirelen = packet.wirelen ?? packet.data.length;
      const data = Buffer.from(packet.data);
      if (packet.block === 'spb') {
        block(3, Buffer.concat([fixed(4, (_b, w32) => w32(wirelen, 0)), data]));
        continue;
      }
      const units = pcapngUnits(iface, packet.sec, packet.ps);
      const high = Number(units >> 32n);
      const low = Number(units & 0xffffffffn);
      const header = fixed(20, (_b, w32, w16) => {
        if (packet.block === 'opb') { w16(packet.interface, 0); w16(0, 2); } else w32(packet.interface, 0);
        w32(high, 4);
        w32(low, 8);
        w32(data.length, 12);
        w32(wirelen, 16);
      });
      block(packet.block === 'opb' ? 2 : 6, Buffer.concat([header, data]));
    }
  }
  return Buffer.concat(parts);
}
