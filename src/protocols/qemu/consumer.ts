// The QEMU migration stream as a TCP StreamConsumer: the direction that opens with "QEVM" goes to
// QemuStreamDecoder, the reverse direction is the return path (PONG, SHUT). A detector picks the
// connection by that magic on any port; multifd channels (magic 0x11223344) get their packet
// headers decoded (pages counted, contents skipped).
import type { Timestamp } from '../../core/timestamp';
import type { Direction, FlowInfo, ProtocolDetector, StreamConsumer, StreamEndReason } from '../../flow/stream-consumer';
import { MULTIFD_MAGIC, QEMU_VM_FILE_MAGIC, RETURN_PATH_MESSAGES, ReturnPathMessage } from './format';
import { QemuDecoderOptions, QemuStreamDecoder, QemuStreamResult } from './stream-decoder';
import { MultifdChannelDecoder } from './multifd';

export interface ReturnPathResult {
  bytes: number;
  messages: number;
  pongs: number;
  /** MIG_RP_MSG_SHUT: the destination finished loading (value 0) or failed. */
  shut?: { value: number; at: Timestamp };
  pageRequests: number; // postcopy REQ_PAGES / REQ_PAGES_ID
  undecodable?: string;
}

/** The destination's messages on the reverse direction of the main connection. */
export class ReturnPathDecoder {
  private readonly pending = new Uint8Array(4 + 0xffff);
  private pendingLen = 0;
  private readonly state: ReturnPathResult = { bytes: 0, messages: 0, pongs: 0, pageRequests: 0 };

  push(buf: Uint8Array, start: number, end: number, at: Timestamp): void {
    this.state.bytes += end - start;
    if (this.state.undecodable) return;
    for (let pos = start; pos < end; ) {
      const k = Math.min(end - pos, this.pending.length - this.pendingLen);
      this.pending.set(buf.subarray(pos, pos + k), this.pendingLen);
      this.pendingLen += k;
      pos += k;
      this.drain(at);
    }
  }

  gap(length: number): void {
    this.state.bytes += length;
    if (!this.state.undecodable) this.state.undecodable = `${length} bytes missing from the capture`;
  }

  result(): ReturnPathResult {
    return { ...this.state, shut: this.state.shut ? { ...this.state.shut } : undefined };
  }

  private drain(at: Timestamp): void {
    const b = this.pending;
    let p = 0;
    while (this.pendingLen - p >= 4) {
      const type = (b[p] << 8) | b[p + 1];
      const len = (b[p + 2] << 8) | b[p + 3];
      if (type === 0 || type >= RETURN_PATH_MESSAGES.length) {
        this.state.undecodable = `unknown return-path message type ${type}`;
        this.pendingLen = 0;
        return;
      }
      if (this.pendingLen - p < 4 + len) break;
      this.state.messages++;
      if (type === ReturnPathMessage.PONG) this.state.pongs++;
      else if (type === ReturnPathMessage.SHUT && len >= 4) {
        this.state.shut = { value: ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0, at };
      } else if (type === ReturnPathMessage.REQ_PAGES || type === ReturnPathMessage.REQ_PAGES_ID) this.state.pageRequests++;
      p += 4 + len;
    }
    if (p > 0) {
      b.copyWithin(0, p, this.pendingLen);
      this.pendingLen -= p;
    }
  }
}

export type QemuConnectionKind = 'main' | 'multifd';

/** One QEMU migration connection seen on the wire. */
export class QemuMigrationStream implements StreamConsumer {
  readonly decoder: QemuStreamDecoder;
  readonly returnPath = new ReturnPathDecoder();
  /** For a multifd channel: its packets (the normal pages travel here, not in the main stream). */
  readonly multifd = new MultifdChannelDecoder();
  endReason?: StreamEndReason;
  ended?: Timestamp;

  constructor(
    readonly flow: FlowInfo,
    readonly kind: QemuConnectionKind,
    readonly sourceDirection: Direction,
    options?: QemuDecoderOptions,
  ) {
    this.decoder = new QemuStreamDecoder(options);
  }

  data(buf: Uint8Array, start: number, end: number, dir: Direction, _streamOffset: number, at: Timestamp): void {
    if (this.kind === 'multifd') {
      if (dir === this.sourceDirection) this.multifd.push(buf, start, end, at);
      return;
    }
    if (dir === this.sourceDirection) this.decoder.push(buf, start, end, at);
    else this.returnPath.push(buf, start, end, at);
  }

  gap(dir: Direction, _streamOffset: number, length: number, at: Timestamp): void {
    if (this.kind === 'multifd') {
      if (dir === this.sourceDirection) this.multifd.gap(length, at);
      return;
    }
    if (dir === this.sourceDirection) this.decoder.gap(length, at);
    else this.returnPath.gap(length);
  }

  end(reason: StreamEndReason, at: Timestamp): void {
    this.endReason = reason;
    this.ended = at;
    if (this.kind === 'main') this.decoder.end(at);
  }

  result(): QemuStreamResult {
    return this.decoder.result();
  }
}

function startsWithWord(bytes: Uint8Array, word: number): boolean {
  return bytes.length >= 4 && ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0 === word;
}

/** True when `bytes` open a QEMU migration stream ("QEVM" + version 2 or 3). */
export function looksLikeQemuStream(bytes: Uint8Array): boolean {
  return startsWithWord(bytes, QEMU_VM_FILE_MAGIC) && (bytes.length < 8 || (bytes[4] === 0 && bytes[5] === 0 && bytes[6] === 0 && (bytes[7] === 2 || bytes[7] === 3)));
}

/** Recognises QEMU migration connections by content, on any port; keeps every stream it made. */
export class QemuStreamDetector implements ProtocolDetector {
  readonly name = 'qemu-migration';
  readonly streams: QemuMigrationStream[] = [];

  constructor(private readonly options?: QemuDecoderOptions) {}

  create(flow: FlowInfo, firstBytes: Uint8Array, dir: Direction): StreamConsumer | undefined {
    let kind: QemuConnectionKind | undefined;
    if (looksLikeQemuStream(firstBytes)) kind = 'main';
    else if (startsWithWord(firstBytes, MULTIFD_MAGIC) && firstBytes.length >= 8 && firstBytes[7] === 1) kind = 'multifd';
    if (!kind) return undefined;
    const stream = new QemuMigrationStream(flow, kind, dir, this.options);
    this.streams.push(stream);
    return stream;
  }
}
