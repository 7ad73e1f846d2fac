// Plain, JSON-ready view of a flow's statistics (what `migscope flows --json/--csv` prints and
// what later stages can embed). Instants as "sec.fraction" strings at the capture's resolution.
import { formatTimestamp, secondsBetween, type Timestamp, type TimestampDigits } from '../core/timestamp';
import type { Endpoint, StreamEndReason } from './stream-consumer';
import type { DirectionStats, TcpFlow } from './tcp-flow';

export interface DirectionSummary {
  packets: number;
  bytes: number;
  payloadBytes: number;
  streamBytes: number;
  retransmissions: number;
  outOfOrder: number;
  duplicateAcks: number;
  zeroWindows: number;
  gaps: number;
  gapBytes: number;
  /** streamBytes over the flow's duration (bytes/s); undefined for a zero-length flow. */
  throughputBps?: number;
}

export interface FlowSummary {
  id: number;
  client: Endpoint;
  server: Endpoint;
  protocol?: string;
  handshakeSeen: boolean;
  firstPacket: number;
  start: string;
  end: string;
  relativeStartSec: number; // from the capture's first packet (tshark's "Rel Start")
  durationSec: number;
  handshakeRttSec?: number;
  endReason?: StreamEndReason;
  clientToServer: DirectionSummary;
  serverToClient: DirectionSummary;
}

function directionSummary(s: DirectionStats, durationSec: number): DirectionSummary {
  return {
    packets: s.packets,
    bytes: s.bytes,
    payloadBytes: s.payloadBytes,
    streamBytes: s.streamBytes,
    retransmissions: s.retransmissions,
    outOfOrder: s.outOfOrder,
    duplicateAcks: s.duplicateAcks,
    zeroWindows: s.zeroWindows,
    gaps: s.gaps,
    gapBytes: s.gapBytes,
    throughputBps: durationSec > 0 ? s.streamBytes / durationSec : undefined,
  };
}

export function summarizeFlow(flow: TcpFlow, captureStart: Timestamp, digits: TimestampDigits): FlowSummary {
  const durationSec = flow.durationSec;
  return {
    id: flow.info.id,
    client: flow.info.client,
    server: flow.info.server,
    protocol: flow.protocol,
    handshakeSeen: flow.info.handshakeSeen,
    firstPacket: flow.info.firstPacket,
    start: formatTimestamp(flow.first, digits),
    end: formatTimestamp(flow.last, digits),
    relativeStartSec: secondsBetween(captureStart, flow.first),
    durationSec,
    handshakeRttSec: flow.handshakeRttSec,
    endReason: flow.endReason,
    clientToServer: directionSummary(flow.stats[0], durationSec),
    serverToClient: directionSummary(flow.stats[1], durationSec),
  };
}
