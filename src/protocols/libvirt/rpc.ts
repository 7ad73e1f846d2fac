// libvirt RPC message framing (virnetprotocol.x) for one direction of a TCP stream.
// Input: ordered bytes with holes (StreamConsumer data/gap). Output: one LibvirtMessage per
// packet, header always, payload buffered only when a payload decoder wants it; STREAM data
// (tunnelled migrations carry the whole QEMU stream) is handed on slice by slice, never kept.
import type { Timestamp } from '../../core/timestamp';
import type { Direction } from '../../flow/stream-consumer';
import { LIBVIRT_PROGRAMS, type LibvirtProgram } from './procedures.generated';

export const MessageType = { CALL: 0, REPLY: 1, MESSAGE: 2, STREAM: 3, CALL_WITH_FDS: 4, REPLY_WITH_FDS: 5, STREAM_HOLE: 6 } as const;
export const MessageStatus = { OK: 0, ERROR: 1, CONTINUE: 2 } as const;
export const MESSAGE_TYPE_NAMES = ['CALL', 'REPLY', 'MESSAGE', 'STREAM', 'CALL_WITH_FDS', 'REPLY_WITH_FDS', 'STREAM_HOLE'];
export const MESSAGE_STATUS_NAMES = ['OK', 'ERROR', 'CONTINUE'];

/** The length word counts itself (checked on the real captures: AUTH_LIST call = 28 = 4 + 24). */
export const LENGTH_WORD = 4;
export const HEADER_BYTES = 24;
export const MIN_MESSAGE = LENGTH_WORD + HEADER_BYTES;
/** VIR_NET_MESSAGE_MAX (32 MiB) does not count the length word. */
export const MAX_MESSAGE = 33_554_432 + LENGTH_WORD;

const programsByNumber = new Map<number, LibvirtProgram>(LIBVIRT_PROGRAMS.map((p) => [p.number, p]));

export function programByNumber(n: number): LibvirtProgram | undefined {
  return programsByNumber.get(n);
}

export function procedureName(program: number, procedure: number): string {
  const p = programsByNumber.get(program);
  return p?.procedures.get(procedure) ?? `${p ? p.name : '0x' + program.toString(16)}#${procedure}`;
}

export interface RpcHeader {
  length: number; // whole message incl. the length word
  program: number;
  version: number;
  procedure: number;
  type: number;
  serial: number;
  status: number;
}

export interface RpcError {
  code: number;
  domain: number;
  message?: string;
  level: number;
  str1?: string;
  str2?: string;
  str3?: string;
}

export interface LibvirtMessage extends RpcHeader {
  dir: Direction;
  streamOffset: number; // offset of the length word in this direction's byte stream
  firstAt: Timestamp; // segment carrying the first byte
  firstPacket: number;
  at: Timestamp; // segment carrying the last byte: the frame tshark reports the message in
  packet: number;
  /** Missing bytes inside the message (a capture gap): payload not decoded. */
  damaged?: boolean;
  /** Decoded XDR payload, for the procedures payloads.ts knows (see decodePayload). */
  body?: Record<string, unknown>;
  error?: RpcError;
  /** When decoding the payload failed: why. */
  payloadProblem?: string;
}

/** A header is plausible when every field is in range and the program is a libvirt one: used to
 *  detect libvirt by content and to resynchronise after a gap. */
export function plausibleHeader(b: Uint8Array, i: number): boolean {
  const length = readU32(b, i);
  if (length < MIN_MESSAGE || length > MAX_MESSAGE) return false;
  if (!programsByNumber.has(readU32(b, i + 4))) return false;
  if (readU32(b, i + 8) !== 1) return false; // every program is at version 1
  const type = readU32(b, i + 16);
  const status = readU32(b, i + 24);
  return type <= 6 && status <= 2 && readU32(b, i + 12) < 0x10000;
}

export function readU32(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

export interface FramerSink {
  /** Should the payload of this header be buffered for decoding? */
  wantsPayload(header: RpcHeader): boolean;
  message(msg: LibvirtMessage, payload: Uint8Array | undefined): void;
  /** Payload bytes of a STREAM/CONTINUE message (raw tunnelled data), in order. */
  streamData(header: RpcHeader, buf: Uint8Array, start: number, end: number, at: Timestamp, packet: number): void;
  /** Bytes of a STREAM/CONTINUE payload that were never captured. */
  streamGap(header: RpcHeader, length: number, at: Timestamp): void;
  problem(detail: string, at: Timestamp, packet: number | undefined, streamOffset: number): void;
}

const enum State {
  Header,
  Payload,
  Resync,
}

/** Upper bound of what one framer ever buffers for a payload decoder (domain XML + cookies are KBs). */
const PAYLOAD_BUFFER_LIMIT = 4 * 1024 * 1024;

export class RpcFramer {
  private state = State.Header;
  private readonly headerBuf = new Uint8Array(MIN_MESSAGE);
  private headerFill = 0;
  private header: RpcHeader = { length: 0, program: 0, version: 0, procedure: 0, type: 0, serial: 0, status: 0 };
  private payload: Uint8Array | undefined;
  private payloadFill = 0;
  private payloadRemaining = 0;
  private isStreamData = false;
  private damaged = false;
  private msgOffset = 0;
  private firstAt: Timestamp = { sec: 0, ps: 0 };
  private firstPacket = 0;
  /** stream offset of the next byte expected */
  private position = -1;
  private lastPacket = 0;
  /** Resync: bytes carried over from the previous chunk (< MIN_MESSAGE) */
  private carry = new Uint8Array(0);
  private carryOffset = 0;
  messages = 0;
  resyncs = 0;

  constructor(private readonly dir: Direction, private readonly sink: FramerSink, resync = false) {
    if (resync) this.state = State.Resync;
  }

  data(buf: Uint8Array, start: number, end: number, streamOffset: number, at: Timestamp, packet: number): void {
    if (this.position >= 0 && streamOffset !== this.position) {
      // The reassembler promises contiguity; treat any mismatch as a hole we were not told about.
      if (streamOffset > this.position) this.gap(this.position, streamOffset - this.position, at);
    }
    this.position = streamOffset + (end - start);
    this.lastPacket = packet;
    let i = start;
    let offset = streamOffset;
    while (i < end) {
      if (this.state === State.Header) {
        if (this.headerFill === 0) {
          this.msgOffset = offset;
          this.firstAt = at;
          this.firstPacket = packet;
          if (end - i >= MIN_MESSAGE) {
            // fast path: the whole header in this chunk, no copy
            const used = this.beginMessage(buf, i, at, packet);
            if (used < 0) return this.startResync(buf, i + 1, end, offset + 1, at, packet);
            i += used;
            offset += used;
            continue;
          }
        }
        const take = Math.min(MIN_MESSAGE - this.headerFill, end - i);
        this.headerBuf.set(buf.subarray(i, i + take), this.headerFill);
        this.headerFill += take;
        i += take;
        offset += take;
        if (this.headerFill === MIN_MESSAGE) {
          this.headerFill = 0;
          if (this.beginMessage(this.headerBuf, 0, at, packet) < 0) {
            // header bytes were bad: rescan them plus the rest of this chunk
            const rescan = new Uint8Array(MIN_MESSAGE - 1 + (end - i));
            rescan.set(this.headerBuf.subarray(1));
            rescan.set(buf.subarray(i, end), MIN_MESSAGE - 1);
            return this.startResync(rescan, 0, rescan.length, this.msgOffset + 1, at, packet);
          }
        }
      } else if (this.state === State.Payload) {
        const take = Math.min(this.payloadRemaining, end - i);
        if (this.isStreamData) {
          if (!this.damaged) this.sink.streamData(this.header, buf, i, i + take, at, packet);
        } else if (this.payload) {
          this.payload.set(buf.subarray(i, i + take), this.payloadFill);
          this.payloadFill += take;
        }
        this.payloadRemaining -= take;
        i += take;
        offset += take;
        if (this.payloadRemaining === 0) this.finishMessage(at, packet);
      } else {
        return this.scan(buf, i, end, offset, at, packet);
      }
    }
  }

  /** Parse a 28-byte header at b[i]; returns bytes consumed (28) or -1 when implausible. */
  private beginMessage(b: Uint8Array, i: number, at: Timestamp, packet: number): number {
    const length = readU32(b, i);
    const h = this.header;
    h.length = length;
    h.program = readU32(b, i + 4);
    h.version = readU32(b, i + 8);
    h.procedure = readU32(b, i + 12) | 0;
    h.type = readU32(b, i + 16);
    h.serial = readU32(b, i + 20);
    h.status = readU32(b, i + 24);
    if (length < MIN_MESSAGE || length > MAX_MESSAGE || h.type > 6 || h.status > 2) {
      this.sink.problem(`implausible libvirt header (length ${length}, type ${h.type}, status ${h.status})`, at, packet, this.msgOffset);
      return -1;
    }
    this.damaged = false;
    this.payloadRemaining = length - MIN_MESSAGE;
    this.isStreamData = h.type === MessageType.STREAM && h.status === MessageStatus.CONTINUE;
    this.payload = undefined;
    this.payloadFill = 0;
    if (!this.isStreamData && this.payloadRemaining > 0 && this.sink.wantsPayload(h)) {
      this.payload = new Uint8Array(Math.min(this.payloadRemaining, PAYLOAD_BUFFER_LIMIT));
    }
    this.state = State.Payload;
    if (this.payloadRemaining === 0) this.finishMessage(at, packet);
    return MIN_MESSAGE;
  }

  private finishMessage(at: Timestamp, packet: number): void {
    const h = this.header;
    this.messages++;
    const msg: LibvirtMessage = {
      ...h,
      dir: this.dir,
      streamOffset: this.msgOffset,
      firstAt: this.firstAt,
      firstPacket: this.firstPacket,
      at,
      packet,
    };
    if (this.damaged) msg.damaged = true;
    const payload = this.payload && !this.damaged && this.payloadFill === this.payload.length ? this.payload : undefined;
    this.payload = undefined;
    this.state = State.Header;
    this.sink.message(msg, payload);
  }

  gap(streamOffset: number, length: number, at: Timestamp): void {
    this.position = Math.max(this.position, streamOffset + length);
    if (this.state === State.Payload && length <= this.payloadRemaining) {
      // The hole lies inside the current message: its length tells where the next one starts.
      this.damaged = true;
      if (this.isStreamData) this.sink.streamGap(this.header, length, at);
      this.payloadRemaining -= length;
      if (this.payloadRemaining === 0) this.finishMessage(at, this.lastPacket);
      return;
    }
    if (this.state !== State.Resync) {
      this.sink.problem(`${length} bytes missing at stream offset ${streamOffset}: resynchronising`, at, undefined, streamOffset);
    }
    this.state = State.Resync;
    this.resyncs++;
    this.headerFill = 0;
    this.payload = undefined;
    this.carry = new Uint8Array(0);
  }

  private startResync(buf: Uint8Array, i: number, end: number, offset: number, at: Timestamp, packet: number): void {
    this.state = State.Resync;
    this.resyncs++;
    this.carry = new Uint8Array(0);
    this.scan(buf, i, end, offset, at, packet);
  }

  /** Look for a plausible header; bytes before it are dropped (counted as a problem already). */
  private scan(buf: Uint8Array, i: number, end: number, offset: number, at: Timestamp, packet: number): void {
    let b = buf;
    let from = i;
    let to = end;
    let base = offset; // stream offset of b[from]
    if (this.carry.length > 0) {
      b = new Uint8Array(this.carry.length + (end - i));
      b.set(this.carry);
      b.set(buf.subarray(i, end), this.carry.length);
      from = 0;
      to = b.length;
      base = this.carryOffset;
    }
    for (let p = from; p + MIN_MESSAGE <= to; p++) {
      if (plausibleHeader(b, p)) {
        this.state = State.Header;
        this.headerFill = 0;
        this.carry = new Uint8Array(0);
        this.position = base + (p - from); // data() below continues from here
        this.data(b, p, to, base + (p - from), at, packet);
        return;
      }
    }
    const keep = Math.max(from, to - (MIN_MESSAGE - 1));
    this.carry = b.slice(keep, to);
    this.carryOffset = base + (keep - from);
  }

  get inResync(): boolean {
    return this.state === State.Resync;
  }

  /** At the end of the flow: is a message cut off? */
  get pendingBytes(): number {
    return this.state === State.Payload ? this.payloadRemaining : this.headerFill;
  }
}
