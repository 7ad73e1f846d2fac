// The decoded view of one captured frame: ONE mutable object, reused for every packet (gopacket's
// DecodingLayerParser idea). Decoders fill numbers and offsets into the record's bytes; nothing
// is copied or allocated per packet. Everything is valid only until the next packet: copy what
// you keep (e.g. `at()` makes a fresh Timestamp, `srcText()` a fresh string).
import type { Timestamp } from '../core/timestamp';

/** Network layer found in the frame. */
export const L3 = { NONE: 0, IPV4: 4, IPV6: 6, ARP: 0x0806, RARP: 0x8035, OTHER: -1 } as const;
export type L3 = (typeof L3)[keyof typeof L3];

/** IP protocol numbers the decoders understand. */
export const IpProto = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58 } as const;

/** TCP flag bits (low byte of the flags field + NS). */
export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80, NS: 0x100 } as const;

/** How far decoding got; a frame cut by the snaplen (or malformed) stops at the first layer it
 *  cannot complete, with the layers before it filled in. */
export const Layer = { NONE: 0, LINK: 1, NETWORK: 2, TRANSPORT: 3 } as const;

export const MAX_VLAN_TAGS = 4;
export const MAX_SACK_BLOCKS = 4;

const EMPTY = new Uint8Array(0);

export class DecodedPacket {
  // ---- the record (copied from PacketRecord: numbers only, plus the frame's buffer) ----
  index = 0; // 1-based packet number
  sec = 0; // timestamp seconds …
  ps = 0; // … and picoseconds
  caplen = 0;
  wirelen = 0; // frame length on the wire (what tshark's frame.len / conv tables count)
  linkType = 0;
  interfaceId = 0;
  fileOffset = 0;
  frame: Uint8Array = EMPTY; // the record's buffer; the frame is frame[frameOffset, frameOffset + caplen)
  frameOffset = 0;

  // ---- decode outcome ----
  decodedTo: number = Layer.NONE; // deepest layer fully decoded
  snaplenCut = false; // a header or the IP payload extends beyond the captured bytes
  malformed = false; // a length or field that cannot be right (decoding stopped there)

  // ---- link layer ----
  srcMacOffset = -1; // offset in `frame` of the 6-byte source MAC, -1 when the link has none
  dstMacOffset = -1;
  etherType = 0; // final ethertype / SLL protocol after VLAN tags (0 for raw IP links)
  vlanCount = 0;
  readonly vlanIds = new Uint16Array(MAX_VLAN_TAGS); // outermost first (802.1ad then 802.1Q)
  readonly vlanTpids = new Uint16Array(MAX_VLAN_TAGS);
  sllPacketType = -1; // Linux cooked capture packet type (0 host, 4 outgoing, ...), -1 otherwise

  // ---- network layer ----
  l3: number = L3.NONE;
  l3Offset = 0; // offset in `frame` of the IP/ARP header
  ipHeaderLength = 0; // IPv4 header incl. options; IPv6 fixed header + extension headers
  ipTotalLength = 0; // IPv4 total length / IPv6 40 + payload length (as the header claims)
  ttl = 0; // IPv4 TTL / IPv6 hop limit
  ipId = 0; // IPv4 identification / IPv6 fragment header identification
  /** Addresses as four 32-bit words (IPv4: words 0..2 are 0, word 3 is the address), so flow keys
   *  compare numbers for both families. */
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  protocol = -1; // IP protocol of the transport header (after IPv6 extension headers), -1 none
  isFragment = false; // this frame carries an IP fragment
  fragmentOffset = 0; // in bytes
  moreFragments = false;
  reassembled = false; // transport fields below come from a reassembled datagram (in `buf`)

  // ---- transport layer (offsets into `buf`, which is `frame` unless reassembled) ----
  buf: Uint8Array = EMPTY;
  l4Offset = 0;
  srcPort = 0;
  dstPort = 0;
  // TCP
  seq = 0; // uint32
  ack = 0; // uint32
  tcpFlags = 0;
  window = 0; // raw (unscaled) window field
  tcpHeaderLength = 0;
  mss = -1; // options, -1 = absent
  windowScale = -1;
  sackPermitted = false;
  sackCount = 0;
  readonly sackBlocks = new Uint32Array(MAX_SACK_BLOCKS * 2); // left, right edge pairs
  hasTimestamps = false;
  tsVal = 0;
  tsEcr = 0;
  // ICMP / ICMPv6
  icmpType = -1;
  icmpCode = -1;
  icmpId = -1; // echo request/reply identifier, -1 for other types
  icmpSeq = -1;
  // ARP / RARP (Ethernet + IPv4 only; otherwise arpOp is set and the rest left at -1)
  arpOp = -1;
  arpSenderMacOffset = -1;
  arpSenderIp = 0;
  arpTargetMacOffset = -1;
  arpTargetIp = 0;

  // ---- payload after the transport header ----
  payloadOffset = 0; // in `buf`
  payloadLength = 0; // captured payload bytes available in `buf`
  payloadWireLength = 0; // payload length the IP/UDP header claims (> payloadLength when cut)

  /** Reset the fields that say which layers are present (called by the decoder per packet).
   *  A layer's own fields are written whenever that layer is decoded, and are meaningful only
   *  then: check `l3`, `protocol` and `decodedTo` first (as with gopacket's decoded-layer list). */
  reset(): void {
    this.decodedTo = Layer.NONE;
    this.snaplenCut = false;
    this.malformed = false;
    this.srcMacOffset = -1;
    this.dstMacOffset = -1;
    this.etherType = 0;
    this.vlanCount = 0;
    this.sllPacketType = -1;
    this.l3 = L3.NONE;
    this.protocol = -1;
    this.isFragment = false;
    this.reassembled = false;
    this.buf = this.frame;
    this.srcPort = 0;
    this.dstPort = 0;
    this.tcpFlags = 0;
    this.icmpType = -1;
    this.arpOp = -1;
    this.payloadOffset = 0;
    this.payloadLength = 0;
    this.payloadWireLength = 0;
  }

  /** A fresh Timestamp of this packet (allocates: call only when you keep it). */
  at(): Timestamp {
    return { sec: this.sec, ps: this.ps };
  }

  get isIp(): boolean {
    return this.l3 === L3.IPV4 || this.l3 === L3.IPV6;
  }
  get isTcp(): boolean {
    return this.protocol === IpProto.TCP && this.decodedTo >= Layer.TRANSPORT;
  }
  get isUdp(): boolean {
    return this.protocol === IpProto.UDP && this.decodedTo >= Layer.TRANSPORT;
  }
  get isIcmp(): boolean {
    return (this.protocol === IpProto.ICMP || this.protocol === IpProto.ICMPV6) && this.decodedTo >= Layer.TRANSPORT;
  }

  /** Source address as text ("10.0.0.1", "fe80::1"); allocates. */
  srcText(): string {
    return this.l3 === L3.IPV6 ? formatIpv6Words(this.src) : formatIpv4(this.src[3]);
  }
  dstText(): string {
    return this.l3 === L3.IPV6 ? formatIpv6Words(this.dst) : formatIpv4(this.dst[3]);
  }
  /** "aa:bb:cc:dd:ee:ff" of the MAC at `offset` in `frame` (e.g. srcMacOffset), or '' if -1. */
  macText(offset: number): string {
    return offset < 0 ? '' : formatMac(this.frame, offset);
  }
  /** The captured payload bytes as a view (allocates a view object; copy if you keep it). */
  payload(): Uint8Array {
    return this.buf.subarray(this.payloadOffset, this.payloadOffset + this.payloadLength);
  }
}

export function formatIpv4(address: number): string {
  return `${address >>> 24}.${(address >>> 16) & 255}.${(address >>> 8) & 255}.${address & 255}`;
}

export function parseIpv4(text: string): number {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${text}`);
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

/** RFC 5952 text: lower case, longest run (≥ 2) of zero groups compressed to "::". */
export function formatIpv6Words(words: ArrayLike<number>): string {
  const groups: number[] = [];
  for (let i = 0; i < 4; i++) groups.push(words[i] >>> 16, words[i] & 0xffff);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

export function formatMac(buf: Uint8Array, offset: number): string {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push(buf[offset + i].toString(16).padStart(2, '0'));
  return parts.join(':');
}
