// A synthetic nanosecond pcap shaped like a libvirt 9.0 peer-to-peer live migration, for
// benchmarks and load tests:
// - the libvirt RPC conversation of the source daemon 10.77.0.1 with the destination daemon
//   10.77.0.2:16509 (AUTH_LIST, CONNECT_SUPPORTS_FEATURE, CONNECT_OPEN, CONNECT_REGISTER_CLOSE_CALLBACK,
//   DOMAIN_MIGRATE_PREPARE3_PARAMS whose reply carries uri_out tcp:10.77.0.2:49152, then — after the
//   data connection closed — DOMAIN_MIGRATE_FINISH3_PARAMS, CONNECT_UNREGISTER_CLOSE_CALLBACK,
//   CONNECT_CLOSE, FIN), payload layouts copied from fixtures/captures/a-p2p-src2dst, with keepalive
//   PING/PONG messages interleaved;
// - one bulk TCP flow 10.77.0.1:40000 → 10.77.0.2:49152 of 1514-byte frames whose payload is a
//   valid QEMU migration stream (QEVM header, configuration, ram START with MEM_SIZE, PART sections
//   of PAGE and ZERO records each ended by EOS + footer, END, EOF), ACKs every second segment;
// - ICMP echo probes 10.77.0.3 → guest 10.77.0.10 every 1 ms, unanswered for `outageProbes`
//   probes from the end of the stream on (the VM's downtime).
// Written with fs.writeSync in 4 MiB blocks: memory stays bounded whatever the size.
import * as fs from 'node:fs';
import { pcapFileHeader } from '../../src/capture/writer';
import { rpcMessage, XdrWriter } from '../../test/protocols/libvirt/rpc-builder';

export interface SyntheticCaptureOptions {
  /** Approximate file size in bytes (the stream is ended when it is reached). */
  readonly bytes: number;
  /** Time between bulk frames (default 12 µs: about 1 Gbit/s). */
  readonly frameSpacingNs?: number;
  readonly startSec?: number;
  /** Keepalive PING/PONG period (default 100 ms; libvirt's own default is 5 s, denser here so the
   *  RPC side keeps a steady share of the work). */
  readonly keepaliveIntervalMs?: number;
  /** Probes left unanswered from the end of the migration stream on (default 25 = 25 ms). */
  readonly outageProbes?: number;
}

export interface SyntheticCaptureInfo {
  readonly packets: number;
  readonly bytes: number; // file size
  readonly bulkPayloadBytes: number; // migration stream bytes (source → destination)
  readonly pages: number;
  readonly zeroPages: number;
  readonly sections: number; // ram PART sections
  readonly probesSent: number;
  readonly probesLost: number; // the outage
  readonly keepalives: number; // PING/PONG pairs
  readonly domain: { readonly name: string; readonly uuid: string };
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

// The libvirt side: payloads laid out as libvirt 9.0 sends them (fixtures/captures/a-p2p-src2dst).
const REMOTE_PROGRAM = 0x20008086;
const KEEPALIVE_PROGRAM = 0x6b656570;
const CALL = 0;
const REPLY = 1;
const MESSAGE = 2;
const DOMAIN = { name: 'synthetic-vm', uuid: '5e000000-0000-4000-8000-000000000001' };
const MIGRATE_URI = 'tcp:10.77.0.2:49152';
const MIGRATE_FLAGS = 0x1b; // LIVE | PEER2PEER | PERSIST_DEST | UNDEFINE_SOURCE, as virsh migrate --live --p2p --persistent --undefinesource

const DOMAIN_XML = `<domain type='qemu'>
  <name>${DOMAIN.name}</name>
  <uuid>${DOMAIN.uuid}</uuid>
  <memory unit='KiB'>131072</memory>
  <currentMemory unit='KiB'>131072</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='bridge'>
      <mac address='52:54:00:77:00:10'/>
      <source bridge='br0'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
`;

/** The qemu-migration cookie (libvirt-internal XML; only its size matters to the analyzer). */
function cookie(host: string, extra = ''): Uint8Array {
  return Buffer.from(`<qemu-migration>\n  <name>${DOMAIN.name}</name>\n  <uuid>${DOMAIN.uuid}</uuid>\n  <hostname>${host}</hostname>\n${extra}</qemu-migration>\n`);
}

/** remote_typed_param list of STRING (type 7) parameters. */
function stringParams(w: XdrWriter, params: ReadonlyArray<readonly [string, string]>): XdrWriter {
  w.uint(params.length);
  for (const [field, value] of params) w.string(field).int(7).string(value);
  return w;
}

function uuidBytes(uuid: string): Uint8Array {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

interface RpcStep {
  readonly procedure: number;
  readonly call?: Uint8Array; // payload after the 28-byte header (empty when absent)
  readonly reply?: Uint8Array;
  readonly replyAfterNs?: number; // default 100 µs
}

const empty = new Uint8Array(0);
const supportsFeature = (feature: number): RpcStep => ({
  procedure: 60, call: new XdrWriter().int(feature).bytes(), reply: new XdrWriter().int(1).bytes(),
});

/** Before the data connection: connection set-up, then the Prepare phase. */
const OPENING: readonly RpcStep[] = [
  { procedure: 66, reply: new XdrWriter().uint(1).int(0).bytes() }, // AUTH_LIST → [AUTH_NONE]
  supportsFeature(10),
  { procedure: 1, call: new XdrWriter().optString('qemu:///system').uint(0).bytes() }, // CONNECT_OPEN
  supportsFeature(14),
  supportsFeature(15),
  { procedure: 360 }, // CONNECT_REGISTER_CLOSE_CALLBACK
  supportsFeature(4),
  supportsFeature(6),
  supportsFeature(13),
  { // DOMAIN_MIGRATE_PREPARE3_PARAMS: params, cookie_in, flags → cookie_out, uri_out
    procedure: 303,
    call: stringParams(new XdrWriter(), [['destination_xml', DOMAIN_XML]]).opaque(cookie('lab-src')).uint(MIGRATE_FLAGS).bytes(),
    reply: new XdrWriter().opaque(cookie('lab-dst')).optString(MIGRATE_URI).bytes(),
    replyAfterNs: 10_000_000,
  },
];

/** After the data connection closed: Finish, then the connection is closed. */
const CLOSING: readonly RpcStep[] = [
  { // DOMAIN_MIGRATE_FINISH3_PARAMS: params, cookie_in, flags, cancelled → dom, cookie_out
    procedure: 306,
    call: stringParams(new XdrWriter(), [['destination_xml', DOMAIN_XML], ['migrate_uri', MIGRATE_URI], ['destination_name', DOMAIN.name]])
      .opaque(cookie('lab-src', '  <statistics>\n    <downtime>25</downtime>\n  </statistics>\n')).uint(MIGRATE_FLAGS).int(0).bytes(),
    reply: new XdrWriter().string(DOMAIN.name).fixed(uuidBytes(DOMAIN.uuid)).int(3).opaque(cookie('lab-dst')).bytes(),
    replyAfterNs: 20_000_000,
  },
  { procedure: 361 }, // CONNECT_UNREGISTER_CLOSE_CALLBACK
  { procedure: 2 }, // CONNECT_CLOSE
];

const PROBE_RTT_NS = 200;

/** Generates the capture into `file`. */
export function generateSyntheticCapture(file: string, options: SyntheticCaptureOptions): SyntheticCaptureInfo {
  const fd = fs.openSync(file, 'w');
  try {
    const out = new FrameWriter(fd);
    const stream = new MigrationStream();
    const spacing = options.frameSpacingNs ?? 12_000;
    const keepaliveInterval = (options.keepaliveIntervalMs ?? 100) * 1e6;
    const outageProbes = options.outageProbes ?? 25;
    let now = (options.startSec ?? 1_795_389_892) * 1e9;

    // ICMP probes, interleaved in time order with everything else by advance().
    let nextProbe = now;
    let probesSent = 0;
    let probesLost = 0;
    let outageLeft = 0;
    const echo = (s: number, d: number, type: number, id: number, t: number) =>
      out.frame(t, s, d, 1, 64, (b, at) => {
        b.writeUInt32BE((type << 24) >>> 0, at); b.writeUInt16BE(0x1234, at + 4); b.writeUInt16BE(id & 0xffff, at + 6);
        b.fill(0x5a, at + 8, at + 64);
      });
    /** Moves the clock to `t`, writing the probes due before it. */
    const advance = (t: number) => {
      now = t;
      while (nextProbe + PROBE_RTT_NS <= now) {
        const id = probesSent++;
        echo(CLIENT, GUEST, 8, id, nextProbe);
        if (outageLeft > 0) {
          outageLeft -= 1;
          probesLost += 1;
        } else {
          echo(GUEST, CLIENT, 0, id, nextProbe + PROBE_RTT_NS);
        }
        nextProbe += 1_000_000;
      }
    };

    // The libvirt RPC connection 10.77.0.1:48546 → 10.77.0.2:16509.
    let rpcSeq = 77_000; // client → server
    let rpcAck = 99_000; // server → client
    let serial = 0;
    const segment = (fromClient: boolean, flags: number, payload: Uint8Array) => {
      const [s, d, sp, dp] = fromClient ? [SRC, DST, 48546, 16509] : [DST, SRC, 16509, 48546];
      out.frame(now, s, d, 6, 20 + payload.length, (b, at) => {
        tcp(b, at, sp, dp, fromClient ? rpcSeq : rpcAck, fromClient ? rpcAck : rpcSeq, flags);
        b.set(payload, at + 20);
      });
      const advanceBy = payload.length + (flags & (SYN | FIN) ? 1 : 0);
      if (fromClient) rpcSeq += advanceBy; else rpcAck += advanceBy;
    };
    const sendRpc = (fromClient: boolean, message: Uint8Array) => {
      for (let at = 0; at < message.length; at += MSS) {
        const last = at + MSS >= message.length;
        segment(fromClient, ACK | (last ? PSH : 0), message.subarray(at, Math.min(at + MSS, message.length)));
        if (!last) advance(now + 2_000);
      }
    };
    const runSteps = (steps: readonly RpcStep[]) => {
      for (const step of steps) {
        const header = { procedure: step.procedure, serial };
        sendRpc(true, rpcMessage({ ...header, type: CALL }, step.call ?? empty));
        advance(now + (step.replyAfterNs ?? 100_000));
        sendRpc(false, rpcMessage({ ...header, type: REPLY }, step.reply ?? empty));
        advance(now + 120_000);
        serial += 1;
      }
    };
    let keepalives = 0;
    const keepalive = () => {
      sendRpc(true, rpcMessage({ program: KEEPALIVE_PROGRAM, procedure: 1, type: MESSAGE, serial: 0 })); // PING
      advance(now + 80_000);
      sendRpc(false, rpcMessage({ program: KEEPALIVE_PROGRAM, procedure: 2, type: MESSAGE, serial: 0 })); // PONG
      keepalives += 1;
    };

    advance(now + 1_000_000);
    segment(true, SYN, empty);
    advance(now + 30_000);
    segment(false, SYN | ACK, empty);
    advance(now + 15_000);
    segment(true, ACK, empty);
    advance(now + 250_000);
    runSteps(OPENING);
    advance(now + 2_000_000);

    // The QEMU data connection (unchanged bulk flow).
    let seq = 1000;
    let ack = 5000;
    let payloadBytes = 0;
    const handshake = (flags: number, s: number, d: number, sp: number, dp: number, sq: number, ak: number) =>
      out.frame(now, s, d, 6, 20, (b, at) => tcp(b, at, sp, dp, sq, ak, flags));
    handshake(SYN, SRC, DST, 40000, 49152, seq - 1, 0);
    advance(now + 50_000);
    handshake(SYN | ACK, DST, SRC, 49152, 40000, ack - 1, seq);
    advance(now + 50_000);
    handshake(ACK, SRC, DST, 40000, 49152, seq, ack);
    let nextKeepalive = now + keepaliveInterval;
    let segments = 0;
    let outageStarted = false;
    for (;;) {
      const ending = out.written + 4 * 1024 * 1024 >= options.bytes; // written counts flushed blocks: leave room for the tail
      if (ending && !outageStarted) {
        outageStarted = true; // the VM stops for the stop-and-copy: probes go unanswered
        outageLeft = outageProbes;
      }
      const payload = stream.take(MSS, ending);
      if (payload.length === 0) break;
      advance(now + spacing);
      out.frame(now, SRC, DST, 6, 20 + payload.length, (b, at) => {
        tcp(b, at, 40000, 49152, seq, ack, ACK | (payload.length < MSS ? PSH : 0));
        payload.copy(b, at + 20);
      });
      seq += payload.length;
      payloadBytes += payload.length;
      segments += 1;
      if (segments % 2 === 0) out.frame(now + 3_000, DST, SRC, 6, 20, (b, at) => tcp(b, at, 49152, 40000, ack, seq, ACK));
      if (now >= nextKeepalive) {
        advance(now + 5_000);
        keepalive();
        nextKeepalive += keepaliveInterval;
      }
      if (stream.finished && payload.length < MSS) break;
    }
    advance(now + 100_000);
    handshake(FIN | ACK, SRC, DST, 40000, 49152, seq, ack);
    advance(now + 50_000);
    handshake(FIN | ACK, DST, SRC, 49152, 40000, ack, seq + 1);
    advance(now + 50_000);
    handshake(ACK, SRC, DST, 40000, 49152, seq + 1, ack + 1);

    advance(now + 2_000_000);
    runSteps(CLOSING.slice(0, 1));
    advance(now + Math.max(10_000_000, (outageLeft + 2) * 1_000_000)); // the outage ends inside the migration
    runSteps(CLOSING.slice(1));
    segment(false, FIN | ACK, empty);
    advance(now + 250_000);
    segment(true, FIN | ACK, empty);
    advance(now + 20_000);
    segment(false, ACK, empty);
    advance(now + 10_000_000); // probes after the migration: the RTT after
    out.flush();
    return {
      packets: out.packets, bytes: out.written, bulkPayloadBytes: payloadBytes,
      pages: stream.pages, zeroPages: stream.zeroPages, sections: stream.sections,
      probesSent, probesLost, keepalives, domain: DOMAIN,
    };
  } finally {
    fs.closeSync(fd);
  }
}
