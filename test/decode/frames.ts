// Hand-built frames for decoder and flow tests: each builder writes the header bytes exactly as the
// RFC lays them out, so tests state their inputs byte by byte instead of trusting our decoder.
import type { PacketRecord } from '../../src/capture/types';

export function bytes(...parts: (Uint8Array | number[])[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const be16 = (v: number) => [(v >>> 8) & 255, v & 255];
const be32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const le32 = (v: number) => [v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255];

export function ip4(text: string): number[] {
  return text.split('.').map(Number);
}

/** Full 16-byte IPv6 address from "2001:db8::1" style text. */
export function ip6(text: string): number[] {
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t].map((g) => parseInt(g, 16));
  return groups.flatMap(be16);
}

export interface TcpSpec {
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags?: number; // FIN 1, SYN 2, RST 4, PSH 8, ACK 16
  window?: number;
  options?: number[]; // raw option bytes, padded to 4 here
  payload?: Uint8Array | number[];
}

export function tcp(s: TcpSpec): Uint8Array {
  const options = [...(s.options ?? [])];
  while (options.length % 4) options.push(0);
  const headerLength = 20 + options.length;
  return bytes(
    [...be16(s.sport), ...be16(s.dport), ...be32(s.seq ?? 0), ...be32(s.ack ?? 0)],
    [(headerLength / 4) << 4, s.flags ?? 0x10, ...be16(s.window ?? 65535), 0, 0, 0, 0],
    options,
    s.payload ?? [],
  );
}

export function udp(sport: number, dport: number, payload: Uint8Array | number[] = []): Uint8Array {
  return bytes([...be16(sport), ...be16(dport), ...be16(8 + payload.length), 0, 0], payload);
}

export function icmpEcho(type: number, id: number, seq: number, payload: number[] = []): Uint8Array {
  return bytes([type, 0, 0, 0, ...be16(id), ...be16(seq)], payload);
}

export interface Ipv4Spec {
  src: string;
  dst: string;
  protocol: number;
  payload: Uint8Array;
  id?: number;
  ttl?: number;
  moreFragments?: boolean;
  fragmentOffset?: number; // bytes, multiple of 8
  options?: number[]; // multiple of 4 bytes
  totalLength?: number; // override (for malformed cases)
}

export function ipv4(s: Ipv4Spec): Uint8Array {
  const options = s.options ?? [];
  const headerLength = 20 + options.length;
  const frag = (s.moreFragments ? 0x2000 : 0) | ((s.fragmentOffset ?? 0) / 8);
  return bytes(
    [0x40 | (headerLength / 4), 0, ...be16(s.totalLength ?? headerLength + s.payload.length), ...be16(s.id ?? 1), ...be16(frag)],
    [s.ttl ?? 64, s.protocol, 0, 0, ...ip4(s.src), ...ip4(s.dst)],
    options,
    s.payload,
  );
}

/** An IPv6 extension header: next header, then the body padded to a multiple of 8 bytes. */
export interface Ipv6Ext {
  type: number; // 0 hop-by-hop, 43 routing, 44 fragment, 60 destination options
  body?: number[]; // after the 2 bytes (next, length); fragment headers give offset/M/id instead
  fragmentOffset?: number;
  moreFragments?: boolean;
  id?: number;
}

export function ipv6(src: string, dst: string, protocol: number, payload: Uint8Array, ext: Ipv6Ext[] = [], hopLimit = 64): Uint8Array {
  const headers: number[][] = [];
  for (let i = 0; i < ext.length; i++) {
    const next = i + 1 < ext.length ? ext[i + 1].type : protocol;
    const e = ext[i];
    if (e.type === 44) {
      headers.push([next, 0, ...be16((e.fragmentOffset ?? 0) | (e.moreFragments ? 1 : 0)), ...be32(e.id ?? 7)]);
    } else {
      const body = [...(e.body ?? [])];
      while ((body.length + 2) % 8) body.push(0);
      headers.push([next, (body.length + 2) / 8 - 1, ...body]);
    }
  }
  const extBytes = headers.flat();
  const first = ext.length ? ext[0].type : protocol;
  return bytes([0x60, 0, 0, 0, ...be16(extBytes.length + payload.length), first, hopLimit], ip6(src), ip6(dst), extBytes, payload);
}

export const MAC_A = [0x52, 0x54, 0x00, 0x77, 0x00, 0x01];
export const MAC_B = [0x52, 0x54, 0x00, 0x77, 0x00, 0x02];

/** Ethernet II with optional VLAN tags [tpid, vid] outermost first. */
export function ether(type: number, payload: Uint8Array, vlans: [number, number][] = [], dst = MAC_B, src = MAC_A): Uint8Array {
  // the ethertype of the frame is the first tag's TPID, each tag's last 2 bytes the next type
  if (vlans.length === 0) return bytes(dst, src, be16(type), payload);
  const out: number[] = [...dst, ...src, ...be16(vlans[0][0])];
  for (let i = 0; i < vlans.length; i++) {
    out.push(...be16(vlans[i][1]), ...be16(i + 1 < vlans.length ? vlans[i + 1][0] : type));
  }
  return bytes(out, payload);
}

export function sll(protocol: number, payload: Uint8Array, packetType = 0, mac = MAC_A): Uint8Array {
  return bytes([...be16(packetType), ...be16(1), ...be16(6), ...mac, 0, 0, ...be16(protocol)], payload);
}

export function sll2(protocol: number, payload: Uint8Array, packetType = 4, mac = MAC_A): Uint8Array {
  return bytes([...be16(protocol), 0, 0, ...be32(3), ...be16(1), packetType, 6, ...mac, 0, 0], payload);
}

/** BSD loopback header: the family in the writer's byte order (NULL) or big-endian (LOOP). */
export function nullHeader(family: number, littleEndian: boolean, payload: Uint8Array): Uint8Array {
  return bytes(littleEndian ? le32(family) : be32(family), payload);
}

export function record(frame: Uint8Array, linkType: number, options: { caplen?: number; index?: number; sec?: number; ps?: number; offset?: number } = {}): PacketRecord {
  const offset = options.offset ?? 0;
  const buf = new Uint8Array(offset + frame.length);
  buf.set(frame, offset);
  return {
    buf,
    offset,
    caplen: options.caplen ?? frame.length,
    wirelen: frame.length,
    sec: options.sec ?? 1000,
    ps: options.ps ?? 0,
    interfaceId: 0,
    linkType,
    index: options.index ?? 1,
    fileOffset: 24,
  };
}
