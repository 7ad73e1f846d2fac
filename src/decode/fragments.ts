// IPv4/IPv6 fragment reassembly, bounded in datagrams, bytes and (capture) time. Fragments are
// rare on a migration network, so this path may allocate; the common unfragmented path never
// comes here. Overlapping fragments: each byte comes from the lowest-offset fragment covering it
// (earliest arrival among equal offsets); overlaps are rare and never legitimate.

export interface FragmentLimits {
  maxDatagrams: number; // datagrams under reassembly at once (oldest evicted beyond)
  maxBytes: number; // bytes buffered over all datagrams
  timeoutSec: number; // capture-time age after which an incomplete datagram is dropped
}

export const DEFAULT_FRAGMENT_LIMITS: FragmentLimits = { maxDatagrams: 1024, maxBytes: 16 << 20, timeoutSec: 30 };

/** IPv4 datagrams cannot exceed 65535 bytes; IPv6 non-jumbo payloads the same. */
const MAX_DATAGRAM = 65535;

interface Piece {
  offset: number;
  bytes: Uint8Array;
}

interface Pending {
  firstSec: number;
  total: number; // -1 until the last fragment (more fragments = 0) arrived
  bytes: number;
  pieces: Piece[];
}

export interface FragmentStats {
  fragments: number; // fragment frames offered
  reassembled: number; // datagrams completed
  timedOut: number; // incomplete datagrams dropped after the timeout
  evicted: number; // incomplete datagrams dropped to respect maxDatagrams / maxBytes
  invalid: number; // fragments beyond 64 KiB or conflicting with the known total
}

export class FragmentReassembler {
  private readonly pending = new Map<string, Pending>();
  private bufferedBytes = 0;
  readonly stats: FragmentStats = { fragments: 0, reassembled: 0, timedOut: 0, evicted: 0, invalid: 0 };

  constructor(private readonly limits: FragmentLimits = DEFAULT_FRAGMENT_LIMITS) {}

  /** Offer one fragment's payload bytes data[start, end) at byte `offset` of the datagram.
   *  Returns the whole reassembled payload when this fragment completes it. */
  add(key: string, offset: number, more: boolean, data: Uint8Array, start: number, end: number, sec: number): Uint8Array | undefined {
    this.stats.fragments++;
    this.expire(sec);
    const length = end - start;
    if (offset + length > MAX_DATAGRAM || length < 0) {
      this.stats.invalid++;
      return undefined;
    }
    let entry = this.pending.get(key);
    if (!entry) {
      entry = { firstSec: sec, total: -1, bytes: 0, pieces: [] };
      this.pending.set(key, entry);
    }
    if (!more) {
      if (entry.total >= 0 && entry.total !== offset + length) {
        this.stats.invalid++;
        return undefined;
      }
      entry.total = offset + length;
    }
    if (length > 0) {
      entry.pieces.push({ offset, bytes: data.slice(start, end) });
      entry.bytes += length;
      this.bufferedBytes += length;
    }
    const whole = this.tryComplete(entry);
    if (whole) {
      this.drop(key, entry);
      this.stats.reassembled++;
      return whole;
    }
    this.enforceBounds();
    return undefined;
  }

  get pendingDatagrams(): number {
    return this.pending.size;
  }

  private tryComplete(entry: Pending): Uint8Array | undefined {
    if (entry.total < 0) return undefined;
    entry.pieces.sort((a, b) => a.offset - b.offset);
    let covered = 0;
    for (const piece of entry.pieces) {
      if (piece.offset > covered) return undefined;
      covered = Math.max(covered, piece.offset + piece.bytes.length);
    }
    if (covered < entry.total) return undefined;
    const out = new Uint8Array(entry.total);
    // Each byte is taken from the first piece (in offset order, then arrival order) covering it.
    let filled = 0;
    for (const piece of entry.pieces) {
      const from = Math.max(filled, piece.offset);
      const to = Math.min(entry.total, piece.offset + piece.bytes.length);
      if (to > from) out.set(piece.bytes.subarray(from - piece.offset, to - piece.offset), from);
      filled = Math.max(filled, to);
    }
    return out;
  }

  private expire(sec: number): void {
    for (const [key, entry] of this.pending) {
      if (sec - entry.firstSec <= this.limits.timeoutSec) break; // insertion order = age order
      this.drop(key, entry);
      this.stats.timedOut++;
    }
  }

  private enforceBounds(): void {
    while (this.pending.size > this.limits.maxDatagrams || this.bufferedBytes > this.limits.maxBytes) {
      const oldest = this.pending.entries().next().value as [string, Pending] | undefined;
      if (!oldest) break;
      this.drop(oldest[0], oldest[1]);
      this.stats.evicted++;
    }
  }

  private drop(key: string, entry: Pending): void {
    this.bufferedBytes -= entry.bytes;
    this.pending.delete(key);
  }
}
