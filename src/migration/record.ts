// The per-migration result: what `analyze --json` writes and what `report` reads back.
// Instants are strings "sec.fraction" at the capture's own resolution (exact, see core/timestamp);
// durations are float seconds. Keep this the single definition of the record's shape.

/** Phase names, in timeline order. KVM/libvirt phases first, then the OpenStack extras. */
export const PHASES = [
  'remoteConnect',
  'preparation',
  'transfer',
  'finish',
  'cleanup',
  'authentication', // OpenStack only
  'initialization', // OpenStack only
  'postMigration', // OpenStack only
] as const;
export type PhaseName = (typeof PHASES)[number];

export const PHASE_LABELS: Record<PhaseName, string> = {
  remoteConnect: 'remote connect',
  preparation: 'preparation',
  transfer: 'transfer',
  finish: 'finish',
  cleanup: 'cleanup',
  authentication: 'authentication',
  initialization: 'initialization',
  postMigration: 'post-migration',
};

export interface PhaseSpan {
  start: string; // instant, "sec.fraction"
  end: string;
  seconds: number;
  startPacket?: number; // packet number of the marker packet that opens the phase
  endPacket?: number;
}

export type MigrationMode = 'p2p' | 'managed' | 'tunnelled' | 'unknown';
export type MigrationOutcome = 'completed' | 'failed' | 'cancelled' | 'incomplete';

export interface DowntimeFigures {
  probeTarget: string;
  probesSent: number;
  probesLost: number; // echo requests inside the migration window without a reply
  intervalMs: number; // observed median gap between requests
  lostTimesIntervalSec: number; // the study's method
  gapSec?: number; // last reply before the outage → first reply after it
  rttMs?: { before?: number; during?: number; after?: number };
  announcement?: string; // instant of the guest's RARP / gratuitous ARP after resume
  guestUnreachableAfter?: boolean; // no reply ever again after the migration
  repliesVisible: boolean; // false: capture point never saw a reply (figures not computable)
}

export interface PassFigures {
  index: number; // 1-based pre-copy pass; the stop-and-copy is reported separately
  start: string;
  seconds: number;
  zeroPages: number;
  normalPages: number;
  otherPages: number; // XBZRLE, compressed, ...
  bytes: number;
  throughputBps: number; // bytes per second on the wire
  dirtyRatePagesPerSec?: number; // pages re-sent ÷ previous pass duration
}

/** What the QEMU migration stream decoder made of the transfer (src/protocols/qemu). */
export interface QemuStreamSummary {
  complete: boolean; // the EOF record was seen
  stoppedReason?: string; // why decoding stopped early (compression, multifd, TLS, a gap, …)
  version?: number;
  machineType?: string;
  ramBytes?: number; // MEM_SIZE total
  bytes: number; // all bytes of the stream
  decodedBytes: number;
  zeroPages: number;
  normalPages: number;
  otherPages: number;
  sweeps: number; // sweeps through RAM in ascending order (≠ dirty syncs)
  deviceSections: number;
  eof?: string; // instant of the EOF record
  destinationDone?: { at: string; ok: boolean }; // return-path SHUT
  multifd?: { channels: number; pages: number; bytes: number; compression?: string }; // normal pages sent outside the main stream
}

export interface MigrationRecord {
  capture: string; // file the migration was found in
  index: number; // 1-based, in order of start within the capture
  domain?: string;
  uuid?: string;
  source: string; // source host IP (libvirt daemon)
  destination: string;
  mode: MigrationMode;
  live?: boolean;
  postcopy?: boolean;
  outcome: MigrationOutcome;
  reason?: string; // error message for failed / cancelled / incomplete
  tsDigits: number; // resolution of the instants below
  start: string; // remote connect start
  end?: string; // cleanup end
  phases: Partial<Record<PhaseName, PhaseSpan>>;
  migrationTimeSec?: number; // remote connect start → cleanup end
  transfer?: {
    bytes: number; // payload bytes of the migration data stream
    throughputBps: number;
    connection?: string; // "10.77.0.1:40000 → 10.77.0.2:49152" or "tunnelled in 10.77…:16509"
    migrateUri?: string;
  };
  downtime?: DowntimeFigures;
  passes?: PassFigures[];
  stopAndCopy?: { start: string; seconds: number; bytes: number; pages: number };
  qemuStream?: QemuStreamSummary;
  markers?: Record<string, string>; // e.g. DPMI experiment/run markers: factor → level
  warnings: string[];
}
