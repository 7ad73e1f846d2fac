// A bounds-checked XDR (RFC 4506) reader over one buffered libvirt payload.
// Every read throws XdrError past the end, so a damaged or truncated payload yields a
// partial decode plus a problem instead of garbage.

export class XdrError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at payload offset ${offset}`);
    this.name = 'XdrError';
  }
}

const decoder = new TextDecoder('utf-8', { fatal: false });

export class XdrReader {
  private readonly view: DataView;
  offset: number;

  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.offset = start;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(bytes: number, what: string): void {
    if (bytes < 0 || this.offset + bytes > this.end) throw new XdrError(`${what} needs ${bytes} bytes, ${this.remaining} left`, this.offset);
  }

  uint(): number {
    this.need(4, 'unsigned int');
    const v = this.view.getUint32(this.offset);
    this.offset += 4;
    return v;
  }

  int(): number {
    this.need(4, 'int');
    const v = this.view.getInt32(this.offset);
    this.offset += 4;
    return v;
  }

  /** hyper / unsigned hyper as a JS number (exact below 2^53: sizes, bandwidths, counters). */
  hyper(signed: boolean): number {
    this.need(8, 'hyper');
    const v = signed ? this.view.getBigInt64(this.offset) : this.view.getBigUint64(this.offset);
    this.offset += 8;
    return Number(v);
  }

  double(): number {
    this.need(8, 'double');
    const v = this.view.getFloat64(this.offset);
    this.offset += 8;
    return v;
  }

  /** Variable-length opaque<max>: length, bytes, pad to 4. Returns [start, end) in buf (no copy). */
  opaqueRange(max = Infinity): [number, number] {
    const length = this.uint();
    if (length > max) throw new XdrError(`opaque length ${length} exceeds ${max}`, this.offset - 4);
    const padded = (length + 3) & ~3;
    this.need(padded, 'opaque');
    const start = this.offset;
    this.offset += padded;
    return [start, start + length];
  }

  fixedOpaque(length: number): Uint8Array {
    const padded = (length + 3) & ~3;
    this.need(padded, 'fixed opaque');
    const bytes = this.buf.subarray(this.offset, this.offset + length);
    this.offset += padded;
    return bytes;
  }

  string(max = Infinity): string {
    const [start, end] = this.opaqueRange(max);
    return decoder.decode(this.buf.subarray(start, end));
  }

  /** XDR optional data (`T *x`): a 0/1 flag, then T when present. */
  optional<T>(read: () => T): T | undefined {
    const present = this.uint();
    if (present > 1) throw new XdrError(`optional flag ${present} is not 0 or 1`, this.offset - 4);
    return present ? read() : undefined;
  }

  array<T>(max: number, read: () => T): T[] {
    const count = this.uint();
    if (count > max) throw new XdrError(`array count ${count} exceeds ${max}`, this.offset - 4);
    const out: T[] = [];
    for (let i = 0; i < count; i++) out.push(read());
    return out;
  }
}
