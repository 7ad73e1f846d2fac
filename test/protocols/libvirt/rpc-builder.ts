// Builds libvirt RPC messages for unit tests (XDR writer + 28-byte framing), so framing and
// payload decoding are tested on bytes whose meaning the test states itself.

export class XdrWriter {
  private readonly parts: number[] = [];

  uint(v: number): this {
    this.parts.push((v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
    return this;
  }
  int(v: number): this {
    return this.uint(v >>> 0);
  }
  hyper(v: number): this {
    const big = BigInt.asUintN(64, BigInt(v));
    return this.uint(Number(big >> 32n)).uint(Number(big & 0xffffffffn));
  }
  opaque(bytes: Uint8Array): this {
    this.uint(bytes.length);
    this.parts.push(...bytes);
    while (this.parts.length % 4) this.parts.push(0);
    return this;
  }
  string(s: string): this {
    return this.opaque(new TextEncoder().encode(s));
  }
  optString(s: string | undefined): this {
    return s === undefined ? this.uint(0) : this.uint(1).string(s);
  }
  fixed(bytes: Uint8Array): this {
    this.parts.push(...bytes);
    return this;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export interface HeaderFields {
  program?: number;
  procedure: number;
  type: number;
  serial: number;
  status?: number;
}

export const REMOTE = 0x20008086;

export function rpcMessage(h: HeaderFields, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const head = new XdrWriter()
    .uint(28 + payload.length)
    .uint(h.program ?? REMOTE)
    .uint(1)
    .uint(h.procedure)
    .uint(h.type)
    .uint(h.serial)
    .uint(h.status ?? 0)
    .bytes();
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
