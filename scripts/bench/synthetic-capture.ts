// A synthetic nanosecond pcap shaped like a live migration, for benchmarks and load tests:
// one bulk TCP flow 10.77.0.1:40000 → 10.77.0.2:49152 of 1514-byte frames whose payload is a
// valid QEMU migration stream (QEVM header, configuration, ram START with MEM_SIZE, PART sections
// of PAGE and ZERO records each ended by EOS + footer, END, EOF), ACKs every second segment,
// plus a libvirt-RPC-like conversation on 16509 and ICMP echo pairs every 1 ms.
// Written with fs.writeSync in 4 MiB blocks: memory stays bounded whatever the size.
import * as fs from 'node:fs';
import { pcapFileHeader } from '../../src/capture/writer';

export interface SyntheticCaptureOptions {
  /** Approximate file size in bytes (the stream is ended when it is reached). */
  readonly bytes: number;
  /** Time between bulk frames (default 12 µs: about 1 Gbit/s). */
  readonly frameSpacingNs?: number;
  readonly startSec?: number;
}

export interface SyntheticCaptureInfo {
  readonly packets: number;
  readonly bytes: number; // file size
  readonly bulkPayloadBytes: number; // migration stream bytes (source → destination)
  readonly pages: number;
  readonly zeroPages: number;
  readonly sections: number; // ram PART sections
}

const PAGE = 4096;
const RAM_BYTES = 128 * 1024 * 1024;
const RAM_ID = 3; // section id of "ram", as in the real capture
const FLAG_ZERO = 0x02;
const FLAG_MEM_SIZE = 0x04;
const FLAG_PAGE = 0x08;
const FLAG_EOS = 0x10;
const FLAG_CONTINUE = 0x20;
const PAGES_PER_PART = 256;
const MSS = 1460;

/** Produces the migration stream incrementally: `take(n)` returns the next n bytes (a view of an
 *  internal buffer, valid until the next call). */
class MigrationStream {
  private buffer = Buffer.alloc(1 << 20);
  private start = 0;
  private end = 0;
  private nextPage = 0;
  private started = false;
  finished = false;
  pages = 0;
  zeroPages = 0;
  sections = 0;
  private readonly pageContent = Buffer.alloc(PAGE);

  take(n: number, ending: boolean): Buffer {
    while (this.end - this.start < n && !this.finished) this.produce(ending);
    const take = Math.min(n, this.end - this.start);
    const out = this.buffer.subarray(this.start, this.start + take);
    this.start += take;
    return out;
  }

  private room(n: number): void {
    if (this.end + n <= this.buffer.length) return;
    this.buffer.copy(this.buffer, 0, this.start, this.end);
    this.end -= this.start;
    this.start = 0;
  }

  private u8(v: number) { this.buffer[this.end++] = v; }
  private be32(v: number) { this.buffer.writeUInt32BE(v >>> 0, this.end); this.end += 4; }
  private be64(v: number) { this.buffer.writeUInt32BE(Math.floor(v / 0x100000000), this.end); this.buffer.writeUInt32BE(v >>> 0, this.end + 4); this.end += 8; }
  private str8(s: string) { this.u8(s.length); this.end += this.buffer.write(s, this.end, 'latin1'); }

  private produce(ending: boolean): void {
    this.room(PAGES_PER_PART * (PAGE + 16) + 256);
    if (!this.started) {
      this.started = true;
      this.be32(0x5145564d); this.be32(3); // QEVM, version 3
      this.u8(0x07); this.be32(13); this.end += this.buffer.write('pc-i440fx-7.2', this.end, 'latin1');
      this.u8(0x08); this.buffer.writeUInt16BE(1, this.end); this.buffer.writeUInt16BE(0, this.end + 2); this.end += 4; // OPEN_RETURN_PATH
      this.u8(0x01); this.be32(RAM_ID); this.str8('ram'); this.be32(0); this.be32(4); // SECTION_START ram
      this.be64(RAM_BYTES | FLAG_MEM_SIZE); this.str8('pc.ram'); this.be64(RAM_BYTES);
      this.be64(FLAG_EOS); this.u8(0x7e); this.be32(RAM_ID);
      return;
    }
    if (ending) {
      this.u8(0x03); this.be32(RAM_ID); this.be64(FLAG_EOS); this.u8(0x7e); this.be32(RAM_ID); // SECTION_END
      this.u8(0x00); // QEMU_VM_EOF
      this.finished = true;
      return;
    }
    this.u8(0x02); this.be32(RAM_ID); // SECTION_PART ram
    this.sections += 1;
    for (let i = 0; i < PAGES_PER_PART; i++) {
      const offset = this.nextPage * PAGE;
      this.nextPage = (this.nextPage + 1) % (RAM_BYTES / PAGE); // wrapping = a new sweep
      const zero = this.nextPage % 7 === 0;
      const flags = (zero ? FLAG_ZERO : FLAG_PAGE) | (i === 0 ? 0 : FLAG_CONTINUE);
      this.be64(offset + flags);
      if (i === 0) this.str8('pc.ram');
      if (zero) {
        this.u8(0);
        this.zeroPages += 1;
      } else {
        this.pageContent.writeUInt32BE(offset, 0); // pages differ, cheaply
        this.pageContent.copy(this.buffer, this.end);
        this.end += PAGE;
      }
      this.pages += 1;
    }
    this.be64(FLAG_EOS); this.u8(0x7e); this.be32(RAM_ID);
  }
}

/** Writes Ethernet/IPv4/TCP|ICMP frames as ns pcap records into a block buffer. */
class FrameWriter {
  private block = Buffer.alloc(4 * 1024 * 1024);
  private used = 0;
  packets = 0;
  written = 0;

  constructor(private readonly fd: number) {
    this.write(pcapFileHeader({ nanosecond: true, snaplen: 262144, linkType: 1 }));
  }

  private write(bytes: Buffer): void {
    fs.writeSync(this.fd, bytes);
    this.written += bytes.length;
  }

  flush(): void {
    if (this.used > 0) this.write(this.block.subarray(0, this.used));
    this.used = 0;
  }

  /** One IPv4 frame; `l4` writes the transport header + payload at the given offset and returns
   *  its length. */
  frame(timeNs: number, src: number, dst: number, protocol: number, l4Length: number, l4: (b: Buffer, at: number) => void): void {
    const frameLength = 14 + 20 + l4Length;
    if (this.used + 16 + frameLength > this.block.length) this.flush();
    const b = this.block;
    let at = this.used;
    b.writeUInt32LE(Math.floor(timeNs / 1e9), at);
    b.writeUInt32LE(timeNs % 1e9, at + 4);
    b.writeUInt32LE(frameLength, at + 8);
    b.writeUInt32LE(frameLength, at + 12);
    at += 16;
    // Ethernet: MACs 52:54:00:77:00:<last IP byte>
    b.writeUInt32BE(0x52540077, at); b.writeUInt16BE(dst & 0xff, at + 4);
    b.writeUInt32BE(0x52540077, at + 6); b.writeUInt16BE(src & 0xff, at + 10);
    b.writeUInt16BE(0x0800, at + 12);
    at += 14;
    b.writeUInt32BE(0x45000000 | (20 + l4Length), at);
    b.writeUInt32BE((((this.packets & 0xffff) << 16) | 0x4000) >>> 0, at + 4); // id, DF
    b.writeUInt32BE(((64 << 24) | (protocol << 16)) >>> 0, at + 8); // TTL, protocol, checksum 0 for now
    b.writeUInt32BE(src >>> 0, at + 12);
    b.writeUInt32BE(dst >>> 0, at + 16);
    b.writeUInt16BE(ipChecksum(b, at), at + 10);
    l4(b, at + 20);
    this.used = at + 20 + l4Length;
    this.packets += 1;
  }
}

function ipChecksum(b: Buffer, at: number): number {
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (b[at + i] << 8) | b[at + i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const ip = (d: number) => ((10 << 24) | (77 << 16) | d) >>> 0;
const SRC = ip(1);
const DST = ip(2);
const CLIENT = ip(3);
const GUEST = ip(10);
const SYN = 0x02;
const ACK = 0x10;
const PSH = 0x08;
const FIN = 0x01;

/** TCP header (20 bytes, no options; checksum left 0: tools do not verify it by default). */
function tcp(b: Buffer, at: number, sport: number, dport: number, seq: number, ack: number, flags: number): void {
  b.writeUInt16BE(sport, at);
  b.writeUInt16BE(dport, at + 2);
  b.writeUInt32BE(seq >>> 0, at + 4);
  b.writeUInt32BE(ack >>> 0, at + 8);
  b.writeUInt16BE((5 << 12) | flags, at + 12);
  b.writeUInt16BE(0xffff, at + 14);
  b.writeUInt32BE(0, at + 16);
}

/** Generates the capture into `file`. */
export function generateSyntheticCapture(file: string, options: SyntheticCaptureOptions): SyntheticCaptureInfo {
  const fd = fs.openSync(file, 'w');
  try {
    const out = new FrameWriter(fd);
    const stream = new MigrationStream();
    const spacing = options.frameSpacingNs ?? 12_000;
    let now = (options.startSec ?? 1_795_389_892) * 1e9;
    let seq = 1000;
    let ack = 5000;
    let payloadBytes = 0;
    let nextPing = now;
    let pingSeq = 0;
    let nextRpc = now;
    let rpcSerial = 0;
    let rpcSeq = 77_000;
    let rpcAck = 99_000;
    const sendRpc = (fromClient: boolean, length: number) => {
      const [s, d, sp, dp] = fromClient ? [SRC, DST, 48546, 16509] : [DST, SRC, 16509, 48546];
      out.frame(now, s, d, 6, 20 + length, (b, at) => {
        tcp(b, at, sp, dp, fromClient ? rpcSeq : rpcAck, fromClient ? rpcAck : rpcSeq, PSH | ACK);
        // libvirt RPC header: length, program, version, procedure, type, serial, status
        b.writeUInt32BE(length, at + 20); b.writeUInt32BE(0x20008086, at + 24); b.writeUInt32BE(1, at + 28);
        b.writeUInt32BE(fromClient ? 1 : 1, at + 32); b.writeUInt32BE(fromClient ? 0 : 1, at + 36);
        b.writeUInt32BE(rpcSerial, at + 40); b.writeUInt32BE(0, at + 44);
        b.fill(0, at + 48, at + 20 + length);
      });
      if (fromClient) rpcSeq += length; else rpcAck += length;
    };
    const handshake = (flags: number, s: number, d: number, sp: number, dp: number, sq: number, ak: number) =>
      out.frame(now, s, d, 6, 20, (b, at) => tcp(b, at, sp, dp, sq, ak, flags));
    handshake(SYN, SRC, DST, 40000, 49152, seq - 1, 0);
    now += 50_000;
    handshake(SYN | ACK, DST, SRC, 49152, 40000, ack - 1, seq);
    now += 50_000;
    handshake(ACK, SRC, DST, 40000, 49152, seq, ack);
    let segments = 0;
    for (;;) {
      const ending = out.written + 4 * 1024 * 1024 >= options.bytes; // written counts flushed blocks: leave room for the tail
      const payload = stream.take(MSS, ending);
      if (payload.length === 0) break;
      now += spacing;
      out.frame(now, SRC, DST, 6, 20 + payload.length, (b, at) => {
        tcp(b, at, 40000, 49152, seq, ack, ACK | (payload.length < MSS ? PSH : 0));
        payload.copy(b, at + 20);
      });
      seq += payload.length;
      payloadBytes += payload.length;
      segments += 1;
      if (segments % 2 === 0) out.frame(now + 3_000, DST, SRC, 6, 20, (b, at) => tcp(b, at, 49152, 40000, ack, seq, ACK));
      if (now >= nextPing) {
        const id = pingSeq++;
        const echo = (s: number, d: number, type: number, t: number) =>
          out.frame(t, s, d, 1, 64, (b, at) => {
            b.writeUInt32BE((type << 24) >>> 0, at); b.writeUInt16BE(0x1234, at + 4); b.writeUInt16BE(id & 0xffff, at + 6);
            b.fill(0x5a, at + 8, at + 64);
          });
        echo(CLIENT, GUEST, 8, now + 1_000);
        echo(GUEST, CLIENT, 0, now + 1_200);
        nextPing += 1_000_000;
      }
      if (now >= nextRpc) {
        rpcSerial += 1;
        sendRpc(true, 180);
        sendRpc(false, 96);
        nextRpc += 100_000_000;
      }
      if (stream.finished && payload.length < MSS) break;
    }
    now += 100_000;
    handshake(FIN | ACK, SRC, DST, 40000, 49152, seq, ack);
    now += 50_000;
    handshake(FIN | ACK, DST, SRC, 49152, 40000, ack, seq + 1);
    now += 50_000;
    handshake(ACK, SRC, DST, 40000, 49152, seq + 1, ack + 1);
    out.flush();
    return {
      packets: out.packets, bytes: out.written, bulkPayloadBytes: payloadBytes,
      pages: stream.pages, zeroPages: stream.zeroPages, sections: stream.sections,
    };
  } finally {
    fs.closeSync(fd);
  }
}
