// Which flows are libvirt RPC: port 16509 (libvirt's default TCP port) or content (a plausible
// RPC header at the start, so non-default ports work). Encrypted transports — TLS (16514, or a
// TLS record header) and SSH (qemu+ssh://) — cannot be decoded; they are reported with timings.
import type { Timestamp } from '../../core/timestamp';
import type { Direction, FlowInfo, ProtocolDetector, StreamConsumer, StreamEndReason } from '../../flow/stream-consumer';
import { LibvirtConversation, type ConnectionTimes, type ConversationOptions, type LibvirtListener } from './conversation';
import { plausibleHeader, programByNumber, readU32, MIN_MESSAGE } from './rpc';

export const LIBVIRT_TCP_PORT = 16509;
export const LIBVIRT_TLS_PORT = 16514;

export type OpaqueKind = 'tls' | 'ssh';

export interface OpaqueConnection {
  kind: OpaqueKind;
  flow: FlowInfo;
  times: ConnectionTimes;
}

export interface LibvirtDetectorListener extends LibvirtListener {
  conversation?(conv: LibvirtConversation): void;
  /** A TLS or SSH connection ended: it may carry libvirt, we cannot tell what. */
  opaque?(conn: OpaqueConnection): void;
}

/** Does the start of a stream look like libvirt RPC? Short prefixes are judged on what is there. */
export function looksLikeLibvirt(firstBytes: Uint8Array): boolean {
  if (firstBytes.length >= MIN_MESSAGE) return plausibleHeader(firstBytes, 0);
  if (firstBytes.length < 12) return false;
  const length = readU32(firstBytes, 0);
  return length >= MIN_MESSAGE && length <= 33_554_436 && programByNumber(readU32(firstBytes, 4)) !== undefined && readU32(firstBytes, 8) === 1;
}

export function looksLikeTls(b: Uint8Array): boolean {
  // TLS record: content type handshake (22), version 3.x
  return b.length >= 3 && b[0] === 0x16 && b[1] === 0x03 && b[2] <= 0x04;
}

export function looksLikeSsh(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x53 && b[1] === 0x53 && b[2] === 0x48 && b[3] === 0x2d; // "SSH-"
}

const hasPort = (flow: FlowInfo, port: number): boolean => flow.server.port === port || flow.client.port === port;

class OpaqueConsumer implements StreamConsumer {
  readonly times: ConnectionTimes;
  constructor(private readonly kind: OpaqueKind, private readonly flow: FlowInfo, private readonly listener: LibvirtDetectorListener) {
    this.times = { firstAt: flow.firstSeen, firstPacket: flow.firstPacket, lastAt: flow.firstSeen, bytes: [0, 0] };
  }
  data(_buf: Uint8Array, start: number, end: number, dir: Direction, _offset: number, at: Timestamp): void {
    this.times.bytes[dir] += end - start;
    this.times.lastAt = at;
  }
  gap(): void {}
  end(reason: StreamEndReason, at: Timestamp): void {
    this.times.end = reason;
    this.times.lastAt = at;
    this.listener.opaque?.({ kind: this.kind, flow: this.flow, times: this.times });
  }
}

export function libvirtDetector(listener: LibvirtDetectorListener, options: ConversationOptions = {}): ProtocolDetector {
  return {
    name: 'libvirt',
    create(flow: FlowInfo, firstBytes: Uint8Array): StreamConsumer | undefined {
      const onDefaultPort = hasPort(flow, LIBVIRT_TCP_PORT);
      if (looksLikeLibvirt(firstBytes) || (onDefaultPort && !looksLikeTls(firstBytes) && !looksLikeSsh(firstBytes))) {
        // Not a header at the start: we joined the connection late (or after a gap), so resync.
        const midStream = !looksLikeLibvirt(firstBytes);
        const conv = new LibvirtConversation(flow, listener, { ...options, midStream: midStream || options.midStream });
        listener.conversation?.(conv);
        return conv;
      }
      if (hasPort(flow, LIBVIRT_TLS_PORT) || (looksLikeTls(firstBytes) && flow.server.port >= 1024)) {
        return new OpaqueConsumer('tls', flow, listener);
      }
      if (looksLikeSsh(firstBytes)) return new OpaqueConsumer('ssh', flow, listener);
      return undefined;
    },
  };
}
