// VM downtime the study's way: a client pings the guest every ~1 ms; the echo requests that got
// no reply, times the observed interval, and the longest gap between replies, measure the outage.
// This module pairs echo requests and replies per probe flow (pinger, target, identifier) over
// 16-bit sequence wrap, duplicates, late replies and several pingers at once, and notes the
// guest's RARP / gratuitous-ARP announcements (QEMU announces the guest after it resumes).
import { formatTimestamp, secondsBetween, type Timestamp } from '../../core/timestamp';
import type { DowntimeFigures } from '../../migration/record';

export type EchoKind = 'request' | 'reply';

/** One ICMP / ICMPv6 echo message, as the packet observer hands it over. */
export interface EchoEvent {
  at: Timestamp;
  src: string; // IP text
  dst: string;
  kind: EchoKind;
  id: number; // echo identifier
  seq: number; // 16-bit sequence number
  packet: number; // packet number in the capture
  srcMac?: string; // Ethernet source of the frame, when the link has one
}

/** A guest announcing where it is: QEMU's RARP after resume, or a gratuitous ARP. */
export interface AnnouncementEvent {
  at: Timestamp;
  kind: 'rarp' | 'garp';
  mac: string; // sender hardware address
  ip?: string; // sender IP (gratuitous ARP only)
  packet: number;
}

export interface DowntimeWindow {
  start: Timestamp;
  end: Timestamp;
}

export interface DowntimeOptions {
  target?: string; // --probe-target: otherwise the target probed most inside the window
  intervalMs?: number; // --probe-interval: otherwise the median gap between requests
  tsDigits?: number; // digits of the instants written (the capture's resolution)
}

/** Summary of one probe flow (for listings and choosing the target). */
export interface ProbeFlowSummary {
  pinger: string;
  target: string;
  id: number;
  requests: number;
  replies: number;
  duplicateRequests: number;
  duplicateReplies: number;
  unmatchedReplies: number; // replies to requests the capture never showed
  first: Timestamp;
}

const SEQ_SPACE = 0x10000;
const HALF_SEQ = 0x8000;
/** A target is "unreachable after" when at least this many requests, over at least this long,
 *  follow its last reply. */
const UNREACHABLE_MIN_REQUESTS = 10;
const UNREACHABLE_MIN_SECONDS = 1;

function median(values: Float64Array | number[]): number | undefined {
  const n = values.length;
  if (n === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  return n % 2 === 1 ? sorted[(n - 1) >> 1] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/** Growable pair of time columns indexed by unwrapped sequence − first sequence; NaN = not seen. */
class ProbeFlow {
  readonly base: Timestamp; // times below are seconds after this instant
  private requestAt = new Float64Array(1024).fill(NaN);
  private replyAt = new Float64Array(1024).fill(NaN);
  private length = 0; // highest index used + 1
  private readonly firstSeq: number; // unwrapped sequence of index 0
  private lastRequestSeq: number; // unwrapped
  requests = 0;
  replies = 0;
  duplicateRequests = 0;
  duplicateReplies = 0;
  unmatchedReplies = 0;
  targetMac?: string;

  constructor(
    readonly pinger: string,
    readonly target: string,
    readonly id: number,
    first: EchoEvent,
  ) {
    this.base = first.at;
    this.firstSeq = first.seq;
    this.lastRequestSeq = first.seq;
  }

  /** The unwrapped sequence closest to `reference` with these low 16 bits. */
  private unwrap(seq: number, reference: number): number {
    const delta = (((seq - reference) % SEQ_SPACE) + SEQ_SPACE + HALF_SEQ) % SEQ_SPACE - HALF_SEQ;
    return reference + delta;
  }

  private ensure(index: number): void {
    if (index < this.requestAt.length) return;
    let size = this.requestAt.length;
    while (size <= index) size *= 2;
    const requests = new Float64Array(size).fill(NaN);
    requests.set(this.requestAt);
    const replies = new Float64Array(size).fill(NaN);
    replies.set(this.replyAt);
    this.requestAt = requests;
    this.replyAt = replies;
  }

  request(e: EchoEvent): void {
    const seq = this.unwrap(e.seq, this.lastRequestSeq);
    const index = seq - this.firstSeq;
    if (index < 0) { this.duplicateRequests++; return; } // before the first one seen: too old to pair
    if (seq > this.lastRequestSeq) this.lastRequestSeq = seq;
    this.ensure(index);
    if (!Number.isNaN(this.requestAt[index])) { this.duplicateRequests++; return; }
    this.requestAt[index] = secondsBetween(this.base, e.at);
    this.requests++;
    if (index >= this.length) this.length = index + 1;
  }

  reply(e: EchoEvent): void {
    const seq = this.unwrap(e.seq, this.lastRequestSeq);
    const index = seq - this.firstSeq;
    if (index < 0 || index >= this.length || Number.isNaN(this.requestAt[index])) { this.unmatchedReplies++; return; }
    if (!Number.isNaN(this.replyAt[index])) { this.duplicateReplies++; return; }
    this.replyAt[index] = secondsBetween(this.base, e.at);
    this.replies++;
    if (e.srcMac && !this.targetMac) this.targetMac = e.srcMac;
  }

  summary(): ProbeFlowSummary {
    return {
      pinger: this.pinger,
      target: this.target,
      id: this.id,
      requests: this.requests,
      replies: this.replies,
      duplicateRequests: this.duplicateRequests,
      duplicateReplies: this.duplicateReplies,
      unmatchedReplies: this.unmatchedReplies,
      first: this.base,
    };
  }

  requestsIn(from: number, to: number): number {
    let n = 0;
    for (let i = 0; i < this.length; i++) {
      const t = this.requestAt[i];
      if (t >= from && t <= to) n++;
    }
    return n;
  }

  /** Figures for requests sent in [from, to] (seconds after base). */
  analyse(from: number, to: number, intervalOverride?: number) {
    const gaps: number[] = [];
    const rttBefore: number[] = [];
    const rttDuring: number[] = [];
    const rttAfter: number[] = [];
    const replyTimes: number[] = [];
    let sent = 0;
    let lost = 0;
    let previousRequest = NaN;
    let lastReplyIndex = -1;
    let lastReply = -Infinity;
    for (let i = 0; i < this.length; i++) {
      const t = this.requestAt[i];
      if (Number.isNaN(t)) continue;
      const r = this.replyAt[i];
      const answered = !Number.isNaN(r);
      if (answered) {
        const rtt = (r - t) * 1000;
        if (t < from) rttBefore.push(rtt);
        else if (t > to) rttAfter.push(rtt);
        else rttDuring.push(rtt);
        replyTimes.push(r);
        if (r > lastReply) { lastReply = r; lastReplyIndex = i; }
      }
      if (t < from || t > to) continue;
      sent++;
      if (!answered) lost++;
      if (!Number.isNaN(previousRequest)) gaps.push(t - previousRequest);
      previousRequest = t;
    }
    // Requests after the very last reply of the whole flow: the target may never answer again.
    let requestsAfterLastReply = 0;
    let firstUnansweredAfter = NaN;
    let lastRequest = NaN;
    for (let i = lastReplyIndex + 1; i < this.length; i++) {
      const t = this.requestAt[i];
      if (Number.isNaN(t)) continue;
      if (Number.isNaN(firstUnansweredAfter)) firstUnansweredAfter = t;
      lastRequest = t;
      requestsAfterLastReply++;
    }
    const unreachable =
      this.replies > 0 &&
      requestsAfterLastReply >= UNREACHABLE_MIN_REQUESTS &&
      lastRequest - firstUnansweredAfter >= UNREACHABLE_MIN_SECONDS &&
      firstUnansweredAfter <= to;
    // Longest silence between consecutive replies that touches the window.
    replyTimes.sort((a, b) => a - b);
    let gap: { from: number; to: number } | undefined;
    for (let i = 1; i < replyTimes.length; i++) {
      const a = replyTimes[i - 1];
      const b = replyTimes[i];
      if (b < from || a > to) continue;
      if (!gap || b - a > gap.to - gap.from) gap = { from: a, to: b };
    }
    const intervalSec = intervalOverride ?? median(gaps);
    return { sent, lost, intervalSec, gap, unreachable, rttBefore: median(rttBefore), rttDuring: median(rttDuring), rttAfter: median(rttAfter), lastReply };
  }
}

/** Collects echo and announcement events of a whole capture; answers per migration window. */
export class ProbeTracker {
  private readonly flows = new Map<string, ProbeFlow>();
  private readonly announcements: AnnouncementEvent[] = [];
  private static readonly MAX_ANNOUNCEMENTS = 10_000;

  echo(e: EchoEvent): void {
    if (e.kind === 'request') {
      const key = `${e.src}>${e.dst}#${e.id}`;
      let flow = this.flows.get(key);
      if (!flow) {
        flow = new ProbeFlow(e.src, e.dst, e.id, e);
        this.flows.set(key, flow);
      }
      flow.request(e);
    } else {
      const flow = this.flows.get(`${e.dst}>${e.src}#${e.id}`);
      if (flow) flow.reply(e);
      // replies with no request flow at all: the capture point missed the pinger's side
      else this.orphanReplies++;
    }
  }

  /** Echo replies whose requests the capture never showed (e.g. a one-way tap). */
  orphanReplies = 0;

  announcement(a: AnnouncementEvent): void {
    if (this.announcements.length < ProbeTracker.MAX_ANNOUNCEMENTS) this.announcements.push(a);
  }

  probeFlows(): ProbeFlowSummary[] {
    return [...this.flows.values()].map((f) => f.summary());
  }

  announcementEvents(): readonly AnnouncementEvent[] {
    return this.announcements;
  }

  /** Downtime figures for one migration window, or undefined when nothing probed a target
   *  inside it. */
  downtime(window: DowntimeWindow, options: DowntimeOptions = {}): DowntimeFigures | undefined {
    const flow = this.chooseFlow(window, options.target);
    if (!flow) return undefined;
    const digits = options.tsDigits ?? 9;
    const from = secondsBetween(flow.base, window.start);
    const to = secondsBetween(flow.base, window.end);
    const override = options.intervalMs !== undefined ? options.intervalMs / 1000 : undefined;
    const a = flow.analyse(from, to, override);
    const intervalSec = a.intervalSec ?? 0;
    const figures: DowntimeFigures = {
      probeTarget: flow.target,
      probesSent: a.sent,
      probesLost: flow.replies > 0 ? a.lost : 0,
      intervalMs: intervalSec * 1000,
      lostTimesIntervalSec: flow.replies > 0 ? a.lost * intervalSec : 0,
      repliesVisible: flow.replies > 0,
    };
    if (flow.replies === 0) return figures;
    if (a.gap) figures.gapSec = a.gap.to - a.gap.from;
    const rtt: { before?: number; during?: number; after?: number } = {};
    if (a.rttBefore !== undefined) rtt.before = a.rttBefore;
    if (a.rttDuring !== undefined) rtt.during = a.rttDuring;
    if (a.rttAfter !== undefined) rtt.after = a.rttAfter;
    if (Object.keys(rtt).length > 0) figures.rttMs = rtt;
    if (a.unreachable) {
      figures.guestUnreachableAfter = true;
      delete figures.gapSec; // no reply after the outage: the gap has no end
    }
    const outageStart = a.unreachable ? a.lastReply : a.gap ? a.gap.from : from;
    const announcement = this.firstAnnouncement(flow, outageStart, to + 5);
    if (announcement) figures.announcement = formatTimestamp(announcement.at, digits);
    return figures;
  }

  private chooseFlow(window: DowntimeWindow, target?: string): ProbeFlow | undefined {
    let best: ProbeFlow | undefined;
    let bestCount = 0;
    for (const flow of this.flows.values()) {
      if (target !== undefined && flow.target !== target) continue;
      const count = flow.requestsIn(secondsBetween(flow.base, window.start), secondsBetween(flow.base, window.end));
      if (count > bestCount || (count === bestCount && best && flow.replies > best.replies)) {
        best = flow;
        bestCount = count;
      }
    }
    return bestCount > 0 ? best : undefined;
  }

  /** First RARP / gratuitous ARP of the target (by MAC, or by IP) in [from, to] seconds after
   *  the flow's base; any announcement when the target's MAC is unknown. */
  private firstAnnouncement(flow: ProbeFlow, from: number, to: number): AnnouncementEvent | undefined {
    for (const a of this.announcements) {
      const t = secondsBetween(flow.base, a.at);
      if (t < from || t > to) continue;
      const mine = flow.targetMac ? a.mac === flow.targetMac || a.ip === flow.target : true;
      if (mine) return a;
    }
    return undefined;
  }
}
