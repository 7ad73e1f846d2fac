// DPMI experiment markers: `capmarker` (libcap_utils) sends a UDP datagram from port 2065 (0x0811)
// holding a 96-byte `struct marker` (caputils/marker.h: magic 0x9f7a3c83, version, flags,
// experiment id, run id, key id, sequence number, sender time, 64-byte comment; big-endian) into
// a captured network to delimit experiments. This observer collects them, so the timeline can
// show them and reports can group migrations by experiment/run.
import { compareTimestamps, parseTimestamp, type Timestamp } from '../core/timestamp';
import type { DecodedPacket } from '../decode/packet';
import type { PacketObserver } from '../flow/pipeline';
import type { MigrationEnricher } from '../migration/analyze-capture';
import type { MigrationRecord } from '../migration/record';
import type { MarkerMessage, MigrationDetail } from '../migration/timeline';

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

/** The marker that governs `at`: the last one at or before it (markers delimit experiments:
 *  everything after a marker belongs to it until the next). The same marker seen at several
 *  locations carries the same fields, so the first sighting stands for it. */
export function governingMarker(markers: readonly DpmiMarker[], at: Timestamp): DpmiMarker | undefined {
  let chosen: DpmiMarker | undefined;
  for (const m of markers) {
    if (compareTimestamps(m.at, at) > 0) continue;
    if (!chosen || compareTimestamps(m.at, chosen.at) > 0) chosen = m;
  }
  return chosen;
}

/**
 * The factors a migration starting at `start` gets from DPMI markers, for MigrationRecord.markers
 * (report groups by them; "run" counts as a repetition): experiment, run, and key when set.
 * Undefined when no marker precedes `start`.
 */
export function markerFactors(markers: readonly DpmiMarker[], start: Timestamp): Record<string, string> | undefined {
  const chosen = governingMarker(markers, start);
  if (!chosen) return undefined;
  const factors: Record<string, string> = { experiment: String(chosen.experiment), run: String(chosen.run) };
  if (chosen.key !== 0) factors.key = String(chosen.key);
  return factors;
}

/**
 * Plugs DPMI markers into `analyze` (a MigrationEnricher): each migration gets the experiment/run
 * of the marker governing its start as `markers` factors, and its --timeline shows that marker
 * and any sent while it ran (as marker messages of program "DPMI").
 */
export class DpmiMarkerEnricher implements MigrationEnricher {
  readonly observer: DpmiMarkerObserver;
  readonly observers: readonly PacketObserver[];

  constructor(options: MarkerObserverOptions = {}) {
    this.observer = new DpmiMarkerObserver(options);
    this.observers = [this.observer];
  }

  get markers(): readonly DpmiMarker[] {
    return this.observer.markers;
  }

  enrich(record: MigrationRecord, detail: MigrationDetail): void {
    const markers = this.observer.markers;
    if (markers.length === 0) return;
    const start = parseTimestamp(record.start);
    const factors = markerFactors(markers, start);
    if (factors) record.markers = { ...record.markers, ...factors };
    const end = record.end ? parseTimestamp(record.end) : undefined;
    const governing = governingMarker(markers, start);
    const during = markers.filter((m) => compareTimestamps(m.at, start) > 0 && (!end || compareTimestamps(m.at, end) <= 0));
    for (const m of governing ? [governing, ...during] : during) detail.markers.push(timelineMessage(m));
  }
}

/** A marker as a timeline message: "DPMI marker exp 1 run 2 MESSAGE serial <seq> OK "comment"". */
function timelineMessage(m: DpmiMarker): MarkerMessage {
  const flags = m.flags & MARKER_FLAG_TERMINATE ? ' terminate' : '';
  return {
    at: m.at,
    packet: m.packet,
    from: m.source,
    to: m.destination,
    program: 'DPMI',
    procedure: `marker exp ${m.experiment} run ${m.run}${m.key ? ` key ${m.key}` : ''}${flags}`,
    type: 2, // a one-way message (libvirt's MESSAGE type name reads right for a datagram)
    serial: m.sequence,
    status: 0,
    note: m.comment || undefined,
  };
}

/** One line for `--timeline`: "DPMI marker exp 3 run 7 seq 0 (10.0.0.1:2065 → 10.0.0.2:4000) "comment"". */
export function describeMarker(m: DpmiMarker): string {
  const flags = m.flags & MARKER_FLAG_TERMINATE ? ' terminate' : '';
  const comment = m.comment ? ` "${m.comment}"` : '';
  return `DPMI marker exp ${m.experiment} run ${m.run} key ${m.key} seq ${m.sequence}${flags} (${m.source} → ${m.destination})${comment}`;
}
