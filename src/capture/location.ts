// Measurement locations: every CaptureInterface is one (a pcapng interface, a DPMI MP + capture
// interface "mp:nic"). Two PacketSink wrappers sit between a reader and the pipeline:
// LocationFilter keeps the frames of selected locations (`--location`), DuplicateFrameFilter
// drops a frame already seen at another location moments before (a merged trace sees one frame
// once per MP it passed), so flows do not count it twice.
import type { CaptureProblem } from '../core/errors';
import { PS_PER_SEC } from '../core/timestamp';
import type { CaptureInterface, PacketRecord, PacketSink } from './types';

/**
 * Does a `--location` selector name this interface? A selector is the interface id ("0"), its
 * full name ("mirror:CONV"), or a name with `*` wildcards ("mp1:*", "*:eth0").
 */
export function matchesLocation(iface: CaptureInterface, selector: string): boolean {
  if (/^\d+$/.test(selector)) return iface.id === Number(selector);
  const name = iface.name ?? '';
  if (!selector.includes('*')) return name === selector;
  const pattern = new RegExp(`^${selector.split('*').map(escapeRegExp).join('.*')}$`);
  return pattern.test(name);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

/** "0 mirror:CONV" lines for messages: which locations a capture has. */
export function describeLocations(interfaces: readonly CaptureInterface[]): string {
  return interfaces.map((i) => `${i.id} ${i.name ?? '(unnamed)'}`).join(', ');
}

/** Passes on only the interfaces (and their frames) that one of the selectors names. */
export class LocationFilter implements PacketSink {
  readonly seen: CaptureInterface[] = [];
  readonly selected: CaptureInterface[] = [];
  droppedPackets = 0;
  private readonly keep: boolean[] = []; // by interface id

  constructor(private readonly next: PacketSink, private readonly selectors: readonly string[]) {}

  interface(iface: CaptureInterface): void {
    this.seen.push(iface);
    const keep = this.selectors.some((s) => matchesLocation(iface, s));
    this.keep[iface.id] = keep;
    if (keep) {
      this.selected.push(iface);
      this.next.interface?.(iface);
    }
  }

  packet(record: PacketRecord): void {
    if (this.keep[record.interfaceId]) this.next.packet(record);
    else this.droppedPackets++;
  }

  problem(problem: CaptureProblem): void {
    this.next.problem?.(problem);
  }

  /** Selectors that named no interface (say so: a typo would otherwise give an empty result). */
  unmatchedSelectors(): string[] {
    return this.selectors.filter((s) => !this.seen.some((i) => matchesLocation(i, s)));
  }
}

export interface DuplicateFilterOptions {
  /** Frames with identical bytes at different locations closer than this are one frame. */
  windowSec?: number;
  /** Upper bound of frames remembered (memory bound at very high rates). */
  maxRemembered?: number;
}

export const DEFAULT_DUPLICATE_WINDOW_SEC = 0.002;
const DEFAULT_MAX_REMEMBERED = 65_536;
const HASHED_HEAD = 128; // bytes of each frame's start that are hashed
const HASHED_TAIL = 32; // … and of its end

interface Remembered {
  readonly hash: number;
  readonly check: number; // a second, independent hash of the same bytes
  readonly sec: number;
  readonly ps: number;
  readonly caplen: number;
  readonly wirelen: number;
  readonly locations: number[]; // interface ids this frame was seen at
}

/**
 * Drops a frame whose bytes were seen at a different location within the window. The same bytes
 * seen again at the same location (a retransmission) are a new frame, not a duplicate. Frames
 * are compared by both lengths and two independent 32-bit hashes of their first 128 and last
 * 32 bytes (no copies kept; headers and checksums make a false match within the window
 * practically impossible). Every frame is remembered,
 * even while one location is known: DPMI locations appear with their first frame.
 */
export class DuplicateFrameFilter implements PacketSink {
  duplicates = 0;
  private readonly windowPs: number;
  private readonly maxRemembered: number;
  private readonly byHash = new Map<number, Remembered[]>();
  private readonly queue: Remembered[] = []; // arrival order, for expiry
  private queueHead = 0;

  constructor(private readonly next: PacketSink, options: DuplicateFilterOptions = {}) {
    this.windowPs = Math.round((options.windowSec ?? DEFAULT_DUPLICATE_WINDOW_SEC) * PS_PER_SEC);
    this.maxRemembered = options.maxRemembered ?? DEFAULT_MAX_REMEMBERED;
  }

  interface(iface: CaptureInterface): void {
    this.next.interface?.(iface);
  }

  problem(problem: CaptureProblem): void {
    this.next.problem?.(problem);
  }

  packet(record: PacketRecord): void {
    this.expire(record.sec, record.ps);
    const { buf, offset, caplen } = record;
    let hash = 0x811c9dc5 | 0; // FNV-1a
    let check = 0x12345678; // multiplicative hash with another prime: independent of FNV
    // The headers (addresses, IP id, TCP seq/ack and the checksums, which cover the payload) lie
    // in the first bytes; with the tail and both lengths they tell frames apart at a fraction of
    // the cost of hashing every byte.
    const headEnd = offset + Math.min(caplen, HASHED_HEAD);
    const tailStart = Math.max(headEnd, offset + caplen - HASHED_TAIL);
    for (let i = offset; i < headEnd; i++) {
      const byte = buf[i];
      hash = Math.imul(hash ^ byte, 0x01000193);
      check = Math.imul((check + byte) | 0, 0x2f0b3c6d) ^ (check >>> 15);
    }
    for (let i = tailStart, end = offset + caplen; i < end; i++) {
      const byte = buf[i];
      hash = Math.imul(hash ^ byte, 0x01000193);
      check = Math.imul((check + byte) | 0, 0x2f0b3c6d) ^ (check >>> 15);
    }
    hash |= 0; // int32 keys stay small integers in the Map
    const candidates = this.byHash.get(hash);
    if (candidates) {
      for (const seen of candidates) {
        if (seen.check !== check || seen.caplen !== caplen || seen.wirelen !== record.wirelen) continue;
        if (!withinPs(seen.sec, seen.ps, record.sec, record.ps, this.windowPs)) continue;
        if (seen.locations.includes(record.interfaceId)) continue; // repeated at the same place: a new frame
        seen.locations.push(record.interfaceId);
        this.duplicates++;
        return;
      }
    }
    const entry: Remembered = { hash, check, sec: record.sec, ps: record.ps, caplen, wirelen: record.wirelen, locations: [record.interfaceId] };
    if (candidates) candidates.push(entry);
    else this.byHash.set(hash, [entry]);
    this.queue.push(entry);
    this.next.packet(record);
  }

  private expire(sec: number, ps: number): void {
    const queue = this.queue;
    while (this.queueHead < queue.length) {
      const oldest = queue[this.queueHead];
      const tooMany = queue.length - this.queueHead > this.maxRemembered;
      if (!tooMany && withinPs(oldest.sec, oldest.ps, sec, ps, this.windowPs)) break;
      if (!tooMany && (oldest.sec > sec || (oldest.sec === sec && oldest.ps > ps))) break; // out of order: keep
      this.forget(oldest);
      this.queueHead++;
    }
    if (this.queueHead > 4096 && this.queueHead * 2 > queue.length) {
      queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  private forget(entry: Remembered): void {
    const list = this.byHash.get(entry.hash);
    if (!list) return;
    const i = list.indexOf(entry);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byHash.delete(entry.hash);
  }
}

/** |a − b| ≤ window, in picoseconds (exact: the difference of nearby instants is small). */
function withinPs(aSec: number, aPs: number, bSec: number, bPs: number, windowPs: number): boolean {
  const diff = (bSec - aSec) * PS_PER_SEC + (bPs - aPs);
  return diff <= windowPs && diff >= -windowPs;
}

export interface LocationOptions {
  /** `--location` selectors; empty or undefined = every location. */
  locations?: readonly string[];
  /** Drop frames seen at two locations (default true; costs one hash pass over each frame). */
  suppressDuplicates?: boolean;
  duplicateWindowSec?: number;
}

export interface LocationSinks {
  /** Give this to the reader. */
  readonly sink: PacketSink;
  readonly filter?: LocationFilter;
  readonly duplicates?: DuplicateFrameFilter;
}

/** Reader → [LocationFilter] → [DuplicateFrameFilter] → next: the usual chain for a command. */
export function locationSinks(next: PacketSink, options: LocationOptions = {}): LocationSinks {
  let sink = next;
  let duplicates: DuplicateFrameFilter | undefined;
  let filter: LocationFilter | undefined;
  if (options.suppressDuplicates ?? true) sink = duplicates = new DuplicateFrameFilter(sink, { windowSec: options.duplicateWindowSec });
  if (options.locations && options.locations.length > 0) sink = filter = new LocationFilter(sink, options.locations);
  return { sink, filter, duplicates };
}
