// Shared machinery of the length-prefixed capture formats (pcap, pcapng, DPMI): whole records are
// parsed in place inside the pushed chunk; only a record that straddles two chunks is copied, into
// a scratch buffer that grows to the largest such record (bounded by the format's maximum).
import type { ChunkParser, ParserContext } from './reader';

export function u16le(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}
export function u16be(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}
export function u32le(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;
}
export function u32be(b: Uint8Array, o: number): number {
  return b[o] * 0x1000000 + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]);
}
export function u16(b: Uint8Array, o: number, le: boolean): number {
  return le ? u16le(b, o) : u16be(b, o);
}
export function u32(b: Uint8Array, o: number, le: boolean): number {
  return le ? u32le(b, o) : u32be(b, o);
}
/** Signed 64-bit as a double (exact up to 2^53; used for offsets in seconds and lengths). */
export function i64(b: Uint8Array, o: number, le: boolean): number {
  const hi = le ? u32le(b, o + 4) : u32be(b, o);
  const lo = le ? u32le(b, o) : u32be(b, o + 4);
  return (hi >= 0x80000000 ? hi - 0x100000000 : hi) * 0x100000000 + lo;
}
export function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

/**
 * A format whose input is a sequence of records, each starting with a header of `headerSize`
 * bytes from which the record's total length can be computed. Subclasses parse runs of complete
 * records in place; this class carries a record cut by a chunk boundary over to the next push.
 */
export abstract class RecordFramer implements ChunkParser {
  private pending = new Uint8Array(4096);
  private pendingLength = 0;
  private pendingOffset = 0; // input offset of pending[0]
  private pendingNeed = 0; // total length of the pending record, 0 while its header is incomplete
  private inputOffset = 0; // input offset of the next pushed byte

  protected constructor(protected readonly ctx: ParserContext, private readonly headerSize: number) {}

  /** Total length of the record at buf[pos] (≥ headerSize bytes are there), validated; or -1
   *  after reporting a fatal problem. Must return ≥ headerSize. */
  protected abstract recordLength(buf: Uint8Array, pos: number, inputOffset: number): number;

  /** Parses the complete records in buf[pos, end) and returns where the first incomplete one
   *  starts (or where a fatal problem stopped it). buf[i] is at input offset base + i. */
  protected abstract parseRun(buf: Uint8Array, pos: number, end: number, base: number): number;

  /** What is missing at the end of the input, for the truncation message. */
  protected describeTruncation(have: number, need: number): string {
    return need > 0
      ? `input ends inside a record: ${have} of its ${need} bytes present`
      : `input ends inside a record header: ${have} of ${this.headerSize} bytes present`;
  }

  push(chunk: Uint8Array): void {
    if (this.ctx.stopped) return;
    const base = this.inputOffset;
    const end = chunk.length;
    this.inputOffset += end;
    let pos = 0;
    if (this.pendingLength > 0) {
      pos = this.completePending(chunk);
      if (pos < 0) return;
    }
    const stop = this.parseRun(chunk, pos, end, base);
    if (stop < end && !this.ctx.stopped) this.stash(chunk, stop, end, base + stop);
  }

  finish(): void {
    if (this.ctx.stopped || this.pendingLength === 0) return;
    this.ctx.problem('truncated', this.describeTruncation(this.pendingLength, this.pendingNeed), this.pendingOffset, true);
  }

  /** Fills the pending record from the start of chunk; returns the chunk position after it, or
   *  -1 when the chunk was used up (or a fatal problem stopped us). */
  private completePending(chunk: Uint8Array): number {
    let pos = 0;
    if (this.pendingNeed === 0) {
      pos = this.append(chunk, 0, this.headerSize - this.pendingLength);
      if (this.pendingLength < this.headerSize) return -1;
      const need = this.recordLength(this.pending, 0, this.pendingOffset);
      if (need < 0) return -1;
      this.pendingNeed = need;
      this.reserve(need);
    }
    pos = this.append(chunk, pos, this.pendingNeed - this.pendingLength);
    if (this.pendingLength < this.pendingNeed) return -1;
    this.parseRun(this.pending, 0, this.pendingNeed, this.pendingOffset);
    this.pendingLength = 0;
    this.pendingNeed = 0;
    return this.ctx.stopped ? -1 : pos;
  }

  /** Appends up to `wanted` bytes of chunk from `from`; returns the chunk position after them. */
  private append(chunk: Uint8Array, from: number, wanted: number): number {
    const to = Math.min(chunk.length, from + wanted);
    this.reserve(this.pendingLength + (to - from));
    this.pending.set(chunk.subarray(from, to), this.pendingLength);
    this.pendingLength += to - from;
    return to;
  }

  private stash(chunk: Uint8Array, from: number, to: number, inputOffset: number): void {
    this.pendingOffset = inputOffset;
    this.pendingLength = 0;
    this.pendingNeed = 0;
    this.append(chunk, from, to - from);
    if (this.pendingLength >= this.headerSize) {
      // parseRun validated this header already; its length is known.
      this.pendingNeed = this.recordLength(this.pending, 0, inputOffset);
    }
  }

  private reserve(size: number): void {
    if (size <= this.pending.length) return;
    const grown = new Uint8Array(Math.max(size, this.pending.length * 2));
    grown.set(this.pending.subarray(0, this.pendingLength));
    this.pending = grown;
  }
}
