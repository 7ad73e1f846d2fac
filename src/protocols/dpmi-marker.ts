// DPMI experiment markers: `capmarker` (libcap_utils) sends a UDP datagram from port 2065 (0x0811)
// holding a 96-byte `struct marker` (caputils/marker.h: magic 0x9f7a3c83, version, flags,
// experiment id, run id, key id, sequence number, sender time, 64-byte comment; big-endian) into
// a captured network to delimit experiments. This observer collects them, so the timeline can
// show them and reports can group migrations by experiment/run.
import { formatTimestamp, type Timestamp } from '../core/timestamp';
import type { DecodedPacket } from '../decode/packet';
import type { PacketObserver } from '../flow/pipeline';

export const MARKER_PORT = 0x0811; // capmarker binds its source port to this
export const MARKER_MAGIC = 0x9f7a3c83;
export const MARKER_SIZE = 96;
export const MARKER_FLAG_TERMINATE = 1; // capdump closes its file on such a marker

export interface DpmiMarkerFields {
  readonly version: number;
  readonly flags: number;
  readonly experiment: number; // exp_id
  readonly run: number; // run_id
  readonly key: number; // key_id ("domain information")
  readonly sequence: number; // seq_num
  readonly senderTime: number; // seconds since the epoch on the sending host (time(NULL))
  readonly comment: string;
}

export interface DpmiMarker extends DpmiMarkerFields {
  readonly packet: number; // packet number in the capture
  readonly at: Timestamp; // capture time of the marker packet
  readonly interfaceId: number; // location it was captured at
  readonly source: string; // "10.0.0.1:2065"
  readonly destination: string;
}

/** Decodes a marker body (the UDP payload), or undefined when the magic is not there. */
export function decodeMarker(b: Uint8Array, offset: number, length: number): DpmiMarkerFields | undefined {
  if (length < MARKER_SIZE - 64) return undefined; // at least everything before the comment
  const view = new DataView(b.buffer, b.byteOffset + offset, length);
  if (view.getUint32(0) !== MARKER_MAGIC) return undefined;
  const commentBytes = b.subarray(offset + 32, offset + Math.min(length, MARKER_SIZE));
  const nul = commentBytes.indexOf(0);
  return {
    version: view.getUint8(4),
    flags: view.getUint8(5),
    experiment: view.getUint32(8),
    run: view.getUint32(12),
    key: view.getUint32(16),
    sequence: view.getUint32(20),
    senderTime: Number(view.getBigUint64(24)),
    comment: Buffer.from(nul >= 0 ? commentBytes.subarray(0, nul) : commentBytes).toString('utf8'),
  };
}

export interface MarkerObserverOptions {
  /** Only markers sent to this UDP port (0 = any port, as libcap_utils' is_marker with port 0). */
  port?: number;
}

/** PacketObserver that keeps every DPMI marker seen (markers are rare: a few per experiment). */
export class DpmiMarkerObserver implements PacketObserver {
  readonly markers: DpmiMarker[] = [];
  private readonly port: number;

  constructor(options: MarkerObserverOptions = {}) {
    this.port = options.port ?? 0;
  }

  packet(p: DecodedPacket): void {
    // Cheap tests first: this runs for every packet of the capture.
    if (p.srcPort !== MARKER_PORT || !p.isUdp || p.isFragment) return;
    if (this.port !== 0 && p.dstPort !== this.port) return;
    const fields = decodeMarker(p.buf, p.payloadOffset, p.payloadLength);
    if (!fields) return;
    this.markers.push({
      ...fields,
      packet: p.index,
      at: p.at(),
      interfaceId: p.interfaceId,
      source: `${p.srcText()}:${p.srcPort}`,
      destination: `${p.dstText()}:${p.dstPort}`,
    });
  }
}

/**
 * The experiment/run a migration belongs to: the last marker at or before `start` (markers
 * delimit experiments: everything after a marker belongs to it until the next). Returns the
 * factor → level map for MigrationRecord.markers, or undefined when no marker precedes `start`.
 * The same marker seen at several locations counts once (they carry the same fields).
 */
export function markerFactors(markers: readonly DpmiMarker[], start: Timestamp, digits = 12): Record<string, string> | undefined {
  let chosen: DpmiMarker | undefined;
  for (const m of markers) {
    if (m.at.sec > start.sec || (m.at.sec === start.sec && m.at.ps > start.ps)) continue;
    if (!chosen || m.at.sec > chosen.at.sec || (m.at.sec === chosen.at.sec && m.at.ps >= chosen.at.ps)) chosen = m;
  }
  if (!chosen) return undefined;
  const factors: Record<string, string> = {
    experiment: String(chosen.experiment),
    run: String(chosen.run),
    markerAt: formatTimestamp(chosen.at, digits),
  };
  if (chosen.key !== 0) factors.key = String(chosen.key);
  if (chosen.comment) factors.markerComment = chosen.comment;
  return factors;
}

/** One line for `--timeline`: "DPMI marker exp 3 run 7 seq 0 (10.0.0.1:2065 → 10.0.0.2:4000) "comment"". */
export function describeMarker(m: DpmiMarker): string {
  const flags = m.flags & MARKER_FLAG_TERMINATE ? ' terminate' : '';
  const comment = m.comment ? ` "${m.comment}"` : '';
  return `DPMI marker exp ${m.experiment} run ${m.run} key ${m.key} seq ${m.sequence}${flags} (${m.source} → ${m.destination})${comment}`;
}
