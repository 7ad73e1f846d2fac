// Live capture: a `tcpdump -w -` child writes a nanosecond pcap to a pipe that the ordinary
// stream reader parses, so live packets take exactly the code path of files (decision and
// measurements: LIVE.md). This module owns the child process: its arguments, its start-up and
// error lines (permission, missing device, bad filter), its drop statistics (polled with
// SIGUSR1, final ones at exit) and a clean stop that lets tcpdump flush.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { readCaptureStream } from './reader';
import type { CaptureSummary, PacketSink } from './types';

/** tcpdump's kernel buffer in KiB. 256 MiB gave 0 drops at ~130 k packets/s in our veth replay;
 *  the default 2 MiB dropped 30 % (LIVE.md). */
export const DEFAULT_BUFFER_KIB = 262_144;

export interface LiveOptions {
  readonly interface: string;
  /** BPF filter expression (tcpdump syntax), passed to tcpdump as one argument. */
  readonly filter?: string;
  readonly tcpdump?: string; // path or name of the tcpdump binary (default: "tcpdump" on PATH)
  readonly bufferKib?: number;
  /** How often to ask tcpdump for its drop counters (SIGUSR1), ms; 0 = only at exit. */
  readonly statsIntervalMs?: number;
}

/** The counters tcpdump prints on SIGUSR1 and at exit. */
export interface CaptureCounters {
  captured: number; // packets written to the pipe
  receivedByFilter: number;
  droppedByKernel: number; // the ring buffer overflowed: packets lost
  droppedByInterface?: number; // NIC-level drops (printed only by some libpcap/driver combos)
}

export type LiveErrorKind = 'no-tcpdump' | 'permission' | 'no-device' | 'bad-filter' | 'failed';

/** tcpdump could not start capturing (or died): the kind says why, the message what to do. */
export class LiveCaptureError extends Error {
  constructor(readonly kind: LiveErrorKind, message: string, readonly tcpdumpOutput = '') {
    super(message);
    this.name = 'LiveCaptureError';
  }
}

/** The tcpdump command line: raw frames (-s0), nanosecond stamps, packet-buffered output (-U) so
 *  a quiet link still reaches us promptly, a big kernel buffer (-B) against bursts, no name
 *  lookups (-n: no DNS traffic of our own on a mirror port). */
export function tcpdumpArgs(options: LiveOptions): string[] {
  const args = ['-i', options.interface, '-w', '-', '-s0', '--time-stamp-precision=nano', '-U', '-n', '-B', String(options.bufferKib ?? DEFAULT_BUFFER_KIB)];
  if (options.filter !== undefined && options.filter.trim() !== '') args.push(options.filter);
  return args;
}

const COUNTER_PATTERNS: [keyof CaptureCounters, RegExp][] = [
  ['captured', /(\d+) packets? captured/],
  ['receivedByFilter', /(\d+) packets? received by filter/],
  ['droppedByKernel', /(\d+) packets? dropped by kernel/],
  ['droppedByInterface', /(\d+) packets? dropped by interface/],
];

/**
 * Parses tcpdump's statistics: the one-line SIGUSR1 form ("tcpdump: 5 packets captured, 7
 * packets received by filter, 0 packets dropped by kernel") or the three-line form printed at exit.
 * Returns undefined when `text` holds no "dropped by kernel" count.
 */
export function parseCaptureCounters(text: string): CaptureCounters | undefined {
  const found: Partial<Record<keyof CaptureCounters, number>> = {};
  for (const [key, pattern] of COUNTER_PATTERNS) {
    const m = pattern.exec(text);
    if (m) found[key] = Number(m[1]);
  }
  if (found.droppedByKernel === undefined) return undefined;
  return {
    captured: found.captured ?? 0,
    receivedByFilter: found.receivedByFilter ?? 0,
    droppedByKernel: found.droppedByKernel,
    ...(found.droppedByInterface !== undefined ? { droppedByInterface: found.droppedByInterface } : {}),
  };
}

/** Turns tcpdump's complaint on stderr into an error that says what to do about it. */
export function classifyTcpdumpFailure(stderr: string, options: Pick<LiveOptions, 'interface' | 'filter'>): LiveCaptureError {
  const text = stderr.trim();
  const quoted = text ? `\ntcpdump said: ${text.split('\n').slice(0, 3).join(' | ')}` : '';
  if (/permission|Operation not permitted|not permitted/i.test(text)) {
    return new LiveCaptureError(
      'permission',
      `no permission to capture on ${options.interface}: run as root, or give tcpdump the capability ` +
        `(sudo setcap cap_net_raw,cap_net_admin=eip "$(command -v tcpdump)")${quoted}`,
      text,
    );
  }
  if (/No such device|doesn't exist|no such interface|not found/i.test(text)) {
    return new LiveCaptureError('no-device', `no interface ${JSON.stringify(options.interface)} (see migscope live --list)${quoted}`, text);
  }
  if (/parse filter|syntax error|filter expression/i.test(text)) {
    return new LiveCaptureError('bad-filter', `tcpdump rejected the filter ${JSON.stringify(options.filter ?? '')}${quoted}`, text);
  }
  return new LiveCaptureError('failed', `tcpdump failed on ${options.interface}${quoted || ' (no message)'}`, text);
}

function missingTcpdump(binary: string): LiveCaptureError {
  return new LiveCaptureError(
    'no-tcpdump',
    `${binary} not found: live capture runs tcpdump (Debian/Ubuntu: apt-get install tcpdump; or name it with --tcpdump PATH)`,
  );
}

/** One line of `tcpdump -D`: an interface libpcap can capture on. */
export interface CaptureDevice {
  readonly name: string;
  readonly description?: string;
  readonly flags: string[]; // e.g. ["Up", "Running", "Loopback"]
}

/** Parses `tcpdump -D` ("3.lo [Up, Running, Loopback]", "2.any (Pseudo-device …) [Up, Running]"). */
export function parseDeviceList(text: string): CaptureDevice[] {
  const devices: CaptureDevice[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*\d+\.(\S+)(?:\s+\((.*)\))?(?:\s+\[([^\]]*)\])?\s*$/.exec(line); // descriptions may hold ( )
    if (!m) continue;
    devices.push({ name: m[1], description: m[2], flags: m[3] ? m[3].split(',').map((f) => f.trim()).filter((f) => f && f !== 'none') : [] });
  }
  return devices;
}

/** The interfaces tcpdump can capture on (its own listing, so names match what -i accepts). */
export function listCaptureDevices(tcpdump = 'tcpdump'): CaptureDevice[] {
  const run = spawnSync(tcpdump, ['-D'], { encoding: 'utf8' });
  if (run.error) {
    if ((run.error as NodeJS.ErrnoException).code === 'ENOENT') throw missingTcpdump(tcpdump);
    throw new LiveCaptureError('failed', `${tcpdump} -D: ${run.error.message}`);
  }
  if (run.status !== 0) throw classifyTcpdumpFailure(run.stderr, { interface: '(listing)' });
  return parseDeviceList(run.stdout);
}

/** Link-type line tcpdump prints once it listens: "listening on eth0, link-type EN10MB (Ethernet), …". */
export function parseListeningLine(text: string): { interface: string; linkType: string } | undefined {
  const m = /listening on (\S+), link-type (\S+)/.exec(text);
  return m ? { interface: m[1], linkType: m[2] } : undefined;
}

export interface LiveResult {
  readonly capture: CaptureSummary;
  /** The last counters tcpdump reported (at exit when it exited cleanly). */
  readonly counters?: CaptureCounters;
  /** True when the capture ended because stop() was called (not because tcpdump died). */
  readonly stoppedByUser: boolean;
  readonly exitCode: number | null;
  readonly stderr: string; // tcpdump's own lines, stats lines excluded
}

/**
 * A running capture. Construct, then `run(sink)`: resolves when tcpdump has exited and every
 * packet it wrote has been delivered to the sink; rejects with LiveCaptureError when tcpdump
 * never started capturing (permission, device, filter, missing binary).
 */
export class LiveCapture {
  /** Called for every counters report (SIGUSR1 answer or final). */
  onCounters?: (counters: CaptureCounters) => void;
  /** Called once tcpdump listens (its interface and link type). */
  onListening?: (info: { interface: string; linkType: string }) => void;
  private child: ChildProcess | undefined;
  private stopping = false;
  private counters: CaptureCounters | undefined;
  private stderrText = '';
  private statsBuffer = ''; // counter lines of the exit form, until the kernel-drop line
  private statsTimer: NodeJS.Timeout | undefined;
  private listening = false;

  constructor(readonly options: LiveOptions) {}

  get lastCounters(): CaptureCounters | undefined {
    return this.counters;
  }

  /** Asks tcpdump for its counters now (the answer comes through onCounters). */
  requestCounters(): void {
    // Before tcpdump says it listens its SIGUSR1 handler may not be set, and SIGUSR1 would kill it.
    if (this.listening && this.child?.pid !== undefined && this.child.exitCode === null && !this.stopping) this.child.kill('SIGUSR1');
  }

  /** Stops the capture: tcpdump flushes, prints its final counters and closes the pipe. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    if (this.statsTimer) clearInterval(this.statsTimer);
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
  }

  async run(sink: PacketSink): Promise<LiveResult> {
    const binary = this.options.tcpdump ?? 'tcpdump';
    const child = spawn(binary, tcpdumpArgs(this.options), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject((err as NodeJS.ErrnoException).code === 'ENOENT' ? missingTcpdump(binary) : new LiveCaptureError('failed', `${binary}: ${err.message}`)));
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    await spawned;

    let pendingLine = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      pendingLine += text;
      let nl: number;
      while ((nl = pendingLine.indexOf('\n')) >= 0) {
        this.stderrLine(pendingLine.slice(0, nl));
        pendingLine = pendingLine.slice(nl + 1);
      }
    });

    const capture = await readCaptureStream(`live:${this.options.interface}`, child.stdout!, sink);
    const { code, signal } = await exited;
    if (pendingLine) this.stderrLine(pendingLine);
    if (this.statsTimer) clearInterval(this.statsTimer);
    const stoppedByUser = this.stopping;
    // tcpdump exits 0 on SIGINT; anything else before we asked is a failure to capture.
    const failed = !stoppedByUser && (code !== 0 || signal !== null);
    if (failed && capture.packets === 0) throw classifyTcpdumpFailure(this.stderrText, this.options);
    return { capture, counters: this.counters, stoppedByUser, exitCode: code, stderr: this.stderrText };
  }

  private stderrLine(line: string): void {
    const listening = parseListeningLine(line);
    if (listening) {
      this.listening = true;
      if (this.options.statsIntervalMs !== 0 && !this.stopping) {
        this.statsTimer = setInterval(() => this.requestCounters(), this.options.statsIntervalMs ?? 1000);
        this.statsTimer.unref();
      }
      this.onListening?.(listening);
      return;
    }
    if (/dropped by interface/.test(line) && !/dropped by kernel/.test(line)) {
      // Printed after the kernel line at exit, only when non-zero.
      const m = /(\d+) packets? dropped by interface/.exec(line);
      if (m && this.counters) this.counters = { ...this.counters, droppedByInterface: Number(m[1]) };
      return;
    }
    // The exit form spreads the counters over three lines: gather them up to "dropped by kernel".
    if (/packets? (captured|received by filter|dropped by kernel)/.test(line)) {
      this.statsBuffer += line + '\n';
      const counters = parseCaptureCounters(this.statsBuffer);
      if (counters) {
        this.statsBuffer = '';
        this.counters = counters;
        this.onCounters?.(counters);
      }
      return;
    }
    if (line.trim()) this.stderrText += line + '\n';
  }

}

/** Whether this process may open packet sockets: root, or CAP_NET_RAW in the effective set.
 *  (tcpdump itself may still have file capabilities; this is only a hint for messages/tests.) */
export function canCaptureAsThisProcess(): boolean {
  if (process.getuid?.() === 0) return true;
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const m = /^CapEff:\s*([0-9a-f]+)/m.exec(status);
    const CAP_NET_RAW = 13n;
    return m !== null && ((BigInt(`0x${m[1]}`) >> CAP_NET_RAW) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** A capture-time instant as plain numbers (what PacketRecord carries). */
export interface CaptureInstant {
  readonly sec: number;
  readonly ps: number;
}

function before(a: CaptureInstant, b: CaptureInstant): boolean {
  return a.sec < b.sec || (a.sec === b.sec && a.ps < b.ps);
}

/**
 * When kernel drops happened, in capture time. tcpdump's counters are cumulative and come with
 * no time; each report is stamped with the newest packet delivered so far, so a report's drops
 * happened at or before that instant. Only reports where the count changed are kept (bounded by
 * `limit`, oldest forgotten), so a long drop-free watch keeps nothing.
 */
export class DropLedger {
  private readonly changes: { at: CaptureInstant; dropped: number }[] = [];
  private latest = 0;

  constructor(private readonly limit = 10_000) {}

  /** A counters report: `dropped` (cumulative) as of the newest packet delivered, `at`. */
  report(dropped: number, at: CaptureInstant | undefined): void {
    if (dropped === this.latest) return;
    this.latest = dropped;
    this.changes.push({ at: at ?? { sec: 0, ps: 0 }, dropped });
    if (this.changes.length > this.limit) this.changes.shift();
  }

  get total(): number {
    return this.latest;
  }

  /**
   * Drops that may have hit packets at or after `start`: the newest total minus the total of the
   * last report stamped before `start`. Conservative: drops reported late count as recent.
   */
  droppedSince(start: CaptureInstant): number {
    let base = 0;
    for (const change of this.changes) {
      if (!before(change.at, start)) break;
      base = change.dropped;
    }
    return this.latest - base;
  }
}
