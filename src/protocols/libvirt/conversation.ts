// One libvirt RPC connection as a StreamConsumer: two framers (client→server, server→client),
// payload decoding, call↔reply pairing by serial, and tunnelled migration data (STREAM
// messages) handed to a QEMU stream consumer as if it were its own TCP flow.
import type { Timestamp } from '../../core/timestamp';
import type { Direction, FlowInfo, ProtocolDetector, StreamConsumer, StreamEndReason } from '../../flow/stream-consumer';
import { decodePayload, wantsPayload } from './payloads';
import { MessageStatus, MessageType, RpcFramer, type LibvirtMessage, type RpcHeader } from './rpc';

/** Flow-level facts of a connection we saw (decodable or not). */
export interface ConnectionTimes {
  firstAt: Timestamp;
  firstPacket: number;
  lastAt: Timestamp;
  bytes: [number, number]; // payload bytes per direction
  end?: StreamEndReason;
}

/** Tunnelled migration data of one stream (one serial, one direction). */
export interface TunnelStream {
  serial: number;
  procedure: number;
  dir: Direction;
  messages: number;
  bytes: number;
  firstAt: Timestamp;
  firstPacket: number;
  lastAt: Timestamp;
  lastPacket: number;
  /** STREAM message with status OK (clean end) or ERROR (abort) */
  endStatus?: number;
  consumer?: StreamConsumer;
}

export interface LibvirtListener {
  message?(conv: LibvirtConversation, msg: LibvirtMessage): void;
  /** The connection ended (FIN, RST or end of capture). */
  end?(conv: LibvirtConversation): void;
  problem?(conv: LibvirtConversation, detail: string, at: Timestamp, packet: number | undefined): void;
}

export interface ConversationOptions {
  /** Detectors offered the tunnelled data (e.g. the QEMU stream detector). */
  tunnelDetectors?: readonly ProtocolDetector[];
  /** Start both directions in resync mode (the connection was joined mid-stream). */
  midStream?: boolean;
}

export class LibvirtConversation implements StreamConsumer {
  readonly framers: [RpcFramer, RpcFramer];
  readonly times: ConnectionTimes;
  /** CALLs without a REPLY yet, by program:serial (serials are per connection and client). */
  private readonly pending = new Map<string, LibvirtMessage>();
  readonly tunnels = new Map<string, TunnelStream>();
  unanswered: LibvirtMessage[] = [];
  messageCount = 0;
  private ended = false;

  constructor(readonly flow: FlowInfo, private readonly listener: LibvirtListener, private readonly options: ConversationOptions = {}) {
    const sinkFor = (dir: Direction) => ({
      wantsPayload: (h: RpcHeader) => wantsPayload(h),
      message: (msg: LibvirtMessage, payload: Uint8Array | undefined) => this.onMessage(msg, payload),
      streamData: (h: RpcHeader, buf: Uint8Array, start: number, end: number, at: Timestamp, packet: number) => this.onStreamData(dir, h, buf, start, end, at, packet),
      streamGap: (h: RpcHeader, length: number, at: Timestamp) => this.onStreamGap(dir, h, length, at),
      problem: (detail: string, at: Timestamp, packet: number | undefined) => this.listener.problem?.(this, detail, at, packet),
    });
    this.framers = [new RpcFramer(0, sinkFor(0), options.midStream), new RpcFramer(1, sinkFor(1), options.midStream)];
    this.times = { firstAt: flow.firstSeen, firstPacket: flow.firstPacket, lastAt: flow.firstSeen, bytes: [0, 0] };
  }

  data(buf: Uint8Array, start: number, end: number, dir: Direction, streamOffset: number, at: Timestamp, packet: number): void {
    this.times.lastAt = at;
    this.times.bytes[dir] += end - start;
    this.framers[dir].data(buf, start, end, streamOffset, at, packet);
  }

  gap(dir: Direction, streamOffset: number, length: number, at: Timestamp): void {
    this.framers[dir].gap(streamOffset, length, at);
  }

  end(reason: StreamEndReason, at: Timestamp): void {
    if (this.ended) return;
    this.ended = true;
    this.times.end = reason;
    this.times.lastAt = at;
    this.unanswered = [...this.pending.values()];
    for (const t of this.tunnels.values()) t.consumer?.end(t.endStatus === MessageStatus.OK ? 'fin' : reason === 'eof' ? 'eof' : 'rst', t.lastAt);
    this.listener.end?.(this);
  }

  private onMessage(msg: LibvirtMessage, payload: Uint8Array | undefined): void {
    this.messageCount++;
    if (payload) {
      const decoded = decodePayload(msg, payload);
      if (decoded.body) msg.body = decoded.body;
      if (decoded.error) msg.error = decoded.error;
      if (decoded.problem) msg.payloadProblem = decoded.problem;
    }
    const key = `${msg.program}:${msg.serial}`;
    if (msg.type === MessageType.CALL || msg.type === MessageType.CALL_WITH_FDS) {
      this.pending.set(key, msg);
    } else if (msg.type === MessageType.REPLY || msg.type === MessageType.REPLY_WITH_FDS) {
      this.pending.delete(key);
    } else if (msg.type === MessageType.STREAM && msg.status !== MessageStatus.CONTINUE) {
      const t = this.tunnels.get(`${msg.dir}:${msg.serial}`);
      if (t) t.endStatus = msg.status;
    }
    if (msg.type === MessageType.STREAM) {
      const t = this.tunnels.get(`${msg.dir}:${msg.serial}`);
      if (t) {
        t.messages++;
        t.lastAt = msg.at;
        t.lastPacket = msg.packet;
      }
    }
    this.listener.message?.(this, msg);
  }

  private onStreamData(dir: Direction, h: RpcHeader, buf: Uint8Array, start: number, end: number, at: Timestamp, packet: number): void {
    const key = `${dir}:${h.serial}`;
    let t = this.tunnels.get(key);
    if (!t) {
      t = { serial: h.serial, procedure: h.procedure, dir, messages: 0, bytes: 0, firstAt: at, firstPacket: packet, lastAt: at, lastPacket: packet };
      this.tunnels.set(key, t);
      t.consumer = this.tunnelConsumer(dir, buf.subarray(start, end), at, packet);
    }
    t.consumer?.data(buf, start, end, dir, t.bytes, at, packet);
    t.bytes += end - start;
  }

  private onStreamGap(dir: Direction, h: RpcHeader, length: number, at: Timestamp): void {
    const t = this.tunnels.get(`${dir}:${h.serial}`);
    if (!t) return;
    t.consumer?.gap(dir, t.bytes, length, at);
    t.bytes += length;
  }

  /** The tunnelled bytes look to a QEMU decoder like a flow of their own between the daemons. */
  private tunnelConsumer(dir: Direction, firstBytes: Uint8Array, at: Timestamp, packet: number): StreamConsumer | undefined {
    const virtualFlow: FlowInfo = { ...this.flow, firstSeen: at, firstPacket: packet, handshakeSeen: false };
    for (const detector of this.options.tunnelDetectors ?? []) {
      const consumer = detector.create(virtualFlow, firstBytes, dir);
      if (consumer) return consumer;
    }
    return undefined;
  }

  get client(): string {
    return `${this.flow.client.ip}:${this.flow.client.port}`;
  }

  get server(): string {
    return `${this.flow.server.ip}:${this.flow.server.port}`;
  }
}
