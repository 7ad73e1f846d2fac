// Parsers that turn what the lab collects during a run (virsh domjobinfo, virsh event output,
// `ping -D -O` log, libvirtd debug logs) into the ground-truth JSON beside each capture.
// Pure functions over text, so they are tested on the real logs in ../shared/captures.

/** `virsh domjobinfo --completed` as key → raw string (the shape of ../shared/captures/*.json). */
export function parseDomjobinfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([^:]+):\s*(.*?)\s*$/.exec(line);
    if (m && m[1].trim() !== '') out[m[1].trim()] = m[2].replace(/\s+/g, ' ');
  }
  return out;
}

const unitBytes: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };

/** The figures a test or a report compares with, in plain units (ms, bytes, counts). */
export interface JobFigures {
  timeElapsedMs?: number;
  downtimeMs?: number;
  setupTimeMs?: number;
  dataProcessedBytes?: number;
  dataTotalBytes?: number;
  memoryBandwidthBytesPerS?: number;
  dirtyRatePagesPerS?: number;
  iterations?: number;
  postcopyRequests?: number;
}

/** Numbers from a parsed domjobinfo. Sizes are printed with 3 decimals of MiB: ±0.5 KiB. */
export function jobFiguresFromDomjobinfo(info: Record<string, string>): JobFigures {
  const num = (key: string): number | undefined => {
    const v = info[key];
    if (v === undefined) return undefined;
    const m = /^(-?[\d.]+)\s*(\S*)/.exec(v);
    if (!m) return undefined;
    const n = Number(m[1]);
    const unit = m[2].replace(/\/s$/, '');
    return unit in unitBytes ? Math.round(n * unitBytes[unit]) : n;
  };
  return dropUndefined({
    timeElapsedMs: num('Time elapsed'),
    downtimeMs: num('Total downtime'),
    setupTimeMs: num('Setup time'),
    dataProcessedBytes: num('Data processed'),
    dataTotalBytes: num('Data total'),
    memoryBandwidthBytesPerS: num('Memory bandwidth'),
    dirtyRatePagesPerS: num('Dirty rate'),
    iterations: num('Iteration'),
    postcopyRequests: num('Postcopy requests'),
  });
}

/** Figures from the source's job-completed event (exact bytes, unlike domjobinfo). */
export function jobFiguresFromEvent(fields: Record<string, string>): JobFigures {
  const n = (k: string): number | undefined => (fields[k] === undefined ? undefined : Number(fields[k]));
  return dropUndefined({
    timeElapsedMs: n('time_elapsed'),
    downtimeMs: n('downtime'),
    setupTimeMs: n('setup_time'),
    dataProcessedBytes: n('data_processed'),
    dataTotalBytes: n('data_total'),
    memoryBandwidthBytesPerS: n('memory_bps'),
    dirtyRatePagesPerS: n('memory_dirty_rate'),
    iterations: n('memory_iteration'),
    postcopyRequests: n('memory_postcopy_requests'),
  });
}

function dropUndefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

export interface VirshEvent {
  at: string; // as printed: "2026-11-22 23:24:54.336+0000"
  epochMs: number;
  event: string; // lifecycle, migration-iteration, job-completed, ...
  domain: string;
  detail: string; // rest of the line
  fields?: Record<string, string>; // job-completed: the tab-indented "key: value" lines
}

/** `virsh event --all --loop --timestamp` output. */
export function parseVirshEvents(text: string): VirshEvent[] {
  const events: VirshEvent[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+[+-]\d{4}): event '([^']+)' for domain '([^']*)':?\s*(.*)$/.exec(line);
    if (m) {
      events.push({ at: m[1], epochMs: libvirtTimeToEpochMs(m[1]), event: m[2], domain: m[3], detail: m[4] });
      continue;
    }
    const f = /^\t([\w.-]+): (.*)$/.exec(line);
    const last = events[events.length - 1];
    if (f && last) (last.fields ??= {})[f[1]] = f[2];
  }
  return events;
}

/** "2026-11-22 23:24:54.336+0000" → epoch milliseconds. */
export function libvirtTimeToEpochMs(at: string): number {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)([+-]\d\d)(\d\d)$/.exec(at);
  if (!m) return NaN;
  return Date.parse(`${m[1]}T${m[2]}${m[3]}:${m[4]}`);
}

export interface PingSummary {
  transmitted: number;
  received: number;
  lost: number; // transmitted - received, as ping reports it
  interval_s: number;
  no_answer_yet_lines: number;
  first_reply_epoch: number | null;
  last_reply_epoch: number | null;
  longest_reply_gap_s: number; // the outage seen by the client (ping slows while unanswered)
  longest_gap_from: { epoch: number; icmp_seq: number } | null;
  longest_gap_to: { epoch: number; icmp_seq: number } | null;
  /** Requests below the last answered sequence number that got no reply. */
  unanswered_seqs: number[];
  unanswered_seq_ranges: [number, number][];
  /** Requests after the last reply: still in flight when ping was stopped, not an outage. */
  unanswered_tail: number;
  duplicates: number;
}

/** `ping -D -O` output (iputils). */
export function parsePingLog(text: string, intervalS = 0.001): PingSummary {
  const answered = new Set<number>();
  let duplicates = 0;
  let noAnswerLines = 0;
  let transmitted = 0;
  let received = 0;
  let prev: { epoch: number; seq: number } | null = null;
  let first: number | null = null;
  let gap = 0;
  let gapFrom: PingSummary['longest_gap_from'] = null;
  let gapTo: PingSummary['longest_gap_to'] = null;
  for (const line of text.split('\n')) {
    const reply = /^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+)/.exec(line);
    if (reply) {
      const epoch = Number(reply[1]);
      const seq = Number(reply[2]);
      if (answered.has(seq) || line.includes('(DUP!)')) {
        duplicates++;
        continue;
      }
      answered.add(seq);
      first ??= epoch;
      if (prev && epoch - prev.epoch > gap) {
        gap = epoch - prev.epoch;
        gapFrom = { epoch: prev.epoch, icmp_seq: prev.seq };
        gapTo = { epoch, icmp_seq: seq };
      }
      prev = { epoch, seq };
      continue;
    }
    if (/no answer yet for icmp_seq=/.test(line)) noAnswerLines++;
    const stats = /^(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(line);
    if (stats) {
      transmitted = Number(stats[1]);
      received = Number(stats[2]);
    }
  }
  const maxAnswered = answered.size ? Math.max(...answered) : 0;
  const unanswered: number[] = [];
  for (let seq = 1; seq < maxAnswered; seq++) if (!answered.has(seq)) unanswered.push(seq);
  return {
    transmitted,
    received,
    lost: transmitted - received,
    interval_s: intervalS,
    no_answer_yet_lines: noAnswerLines,
    first_reply_epoch: first,
    last_reply_epoch: prev?.epoch ?? null,
    longest_reply_gap_s: Math.round(gap * 1e6) / 1e6,
    longest_gap_from: gapFrom,
    longest_gap_to: gapTo,
    unanswered_seqs: unanswered,
    unanswered_seq_ranges: toRanges(unanswered),
    unanswered_tail: Math.max(0, transmitted - maxAnswered),
    duplicates,
  };
}

export function toRanges(sorted: number[]): [number, number][] {
  const ranges: [number, number][] = [];
  for (const n of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && n === last[1] + 1) last[1] = n;
    else ranges.push([n, n]);
  }
  return ranges;
}

/**
 * libvirtd debug-log lines that mark the study's phases. The study placed its markers by
 * correlating such lines with packets; kept as data so an analyst can read and adjust them.
 * phase: remote-connect | preparation | transfer | finish | cleanup | error.
 */
export const phaseLogMarkers: readonly { name: string; phase: string; pattern: RegExp }[] = [
  { name: 'perform-call-received', phase: 'remote-connect', pattern: /remoteDispatchDomainMigratePerform3ParamsHelper/ },
  { name: 'begin-call-received', phase: 'remote-connect', pattern: /remoteDispatchDomainMigrateBegin3ParamsHelper/ },
  { name: 'p2p-connect-destination', phase: 'remote-connect', pattern: /qemuMigrationSrcPerformPeer2Peer:\d+ :/ },
  { name: 'begin-phase', phase: 'preparation', pattern: /qemuMigrationSrcBeginPhase:/ },
  { name: 'prepare-call-sent', phase: 'preparation', pattern: /qemuMigrationSrcPerformPeer2Peer3:\d+ : Prepare3/ },
  { name: 'prepare-call-received', phase: 'preparation', pattern: /remoteDispatchDomainMigratePrepare(Tunnel)?3ParamsHelper/ },
  { name: 'destination-qemu-start', phase: 'preparation', pattern: /qemuProcessStartValidate:.*Checking domain and device security labels/ },
  { name: 'incoming-migration-setup', phase: 'preparation', pattern: /qemuMigrationDstRun:.*Setting up incoming migration/ },
  { name: 'perform-call-sent', phase: 'transfer', pattern: /qemuMigrationSrcPerformPeer2Peer3:\d+ : Perform3/ },
  { name: 'qmp-migrate', phase: 'transfer', pattern: /QEMU_MONITOR_SEND_MSG: .*"execute":"migrate",/ },
  { name: 'migration-status', phase: 'transfer', pattern: /qemuProcessHandleMigrationStatus:.*changed state to (\S+)/ },
  { name: 'migration-iteration', phase: 'transfer', pattern: /qemuProcessHandleMigrationPass:.*iteration (\d+)/ },
  { name: 'guest-stopped', phase: 'transfer', pattern: /QEMU_MONITOR_RECV_EVENT: .*"event": "STOP"/ },
  { name: 'guest-resumed', phase: 'finish', pattern: /QEMU_MONITOR_RECV_EVENT: .*"event": "RESUME"/ },
  { name: 'postcopy-switch', phase: 'transfer', pattern: /"execute":"migrate-start-postcopy"/ },
  { name: 'cancel', phase: 'transfer', pattern: /"execute":"migrate_cancel"/ },
  { name: 'finish-call-sent', phase: 'finish', pattern: /qemuMigrationSrcPerformPeer2Peer3:\d+ : Finish3/ },
  { name: 'finish-call-received', phase: 'finish', pattern: /remoteDispatchDomainMigrateFinish3ParamsHelper/ },
  { name: 'finish-phase', phase: 'finish', pattern: /qemuMigrationDstFinish:\d+ :/ },
  { name: 'confirm-phase', phase: 'cleanup', pattern: /qemuMigrationSrcConfirmPhase:/ },
  { name: 'confirm-call-received', phase: 'cleanup', pattern: /remoteDispatchDomainMigrateConfirm3ParamsHelper/ },
  { name: 'source-qemu-stop', phase: 'cleanup', pattern: /qemuProcessStop:.*reason=migrated/ },
  { name: 'error', phase: 'error', pattern: /^\S+ \S+ \d+: error : / },
];

export interface PhaseLogLine {
  side: 'src' | 'dst';
  marker: string;
  phase: string;
  at: string;
  epochMs: number;
  value?: string; // the captured group (migration status, iteration number)
  line: string; // trimmed to 300 characters
}

/** The marker lines of one daemon's log, in log order. */
export function extractPhaseLines(log: string, side: 'src' | 'dst'): PhaseLogLine[] {
  const out: PhaseLogLine[] = [];
  for (const line of log.split('\n')) {
    const t = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+[+-]\d{4}): /.exec(line);
    if (!t) continue;
    for (const marker of phaseLogMarkers) {
      const m = marker.pattern.exec(line);
      if (!m) continue;
      out.push({
        side,
        marker: marker.name,
        phase: marker.phase,
        at: t[1],
        epochMs: libvirtTimeToEpochMs(t[1]),
        ...(m[1] !== undefined && marker.name !== 'prepare-call-received' ? { value: m[1] } : {}),
        line: line.length > 300 ? `${line.slice(0, 297)}...` : line,
      });
      break;
    }
  }
  return out;
}
