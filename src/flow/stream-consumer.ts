// The boundary between TCP reassembly and protocol decoders (gopacket's tcpassembly.Stream,
// Zeek's DeliverStream/Undelivered). Protocol code never sees TCP segments, only ordered bytes.
import type { Timestamp } from '../core/timestamp';

/** 0 = from the flow's client (SYN sender, or first sender when the handshake was missed),
 *  1 = from the server. */
export type Direction = 0 | 1;

export interface Endpoint {
  readonly ip: string; // dotted IPv4 or compressed IPv6 text
  readonly port: number;
}

export interface FlowInfo {
  readonly id: number; // unique within one analysis, in order of first packet
  readonly client: Endpoint;
  readonly server: Endpoint;
  readonly firstSeen: Timestamp;
  readonly firstPacket: number; // packet number of the first packet
  readonly handshakeSeen: boolean;
}

export type StreamEndReason = 'fin' | 'rst' | 'eof';

export interface StreamConsumer {
  /** bytes buf[start, end) follow the previous ones of direction `dir` without a hole.
   *  `streamOffset` is the offset of buf[start] in that direction's byte stream (0 = first byte
   *  after the SYN, or the first byte seen). `at` and `packet` are those of the carrying segment.
   *  The bytes are only valid during the call. (start/end instead of a subarray: no allocation.) */
  data(buf: Uint8Array, start: number, end: number, dir: Direction, streamOffset: number, at: Timestamp, packet: number): void;
  /** `length` bytes at `streamOffset` of direction `dir` will never be delivered. */
  gap(dir: Direction, streamOffset: number, length: number, at: Timestamp): void;
  /** The flow ended (both FINs, a RST, or the end of the capture). Called once. */
  end(reason: StreamEndReason, at: Timestamp): void;
}

/** Picks a decoder for a flow from its endpoints and first payload bytes (port or content). */
export interface ProtocolDetector {
  readonly name: string;
  /** `firstBytes`: the first payload bytes seen in direction `dir` (may be short). */
  create(flow: FlowInfo, firstBytes: Uint8Array, dir: Direction): StreamConsumer | undefined;
}
