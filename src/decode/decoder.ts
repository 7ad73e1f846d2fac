// Link → network → transport decoding of one frame into the reused DecodedPacket. Pure reads at
// offsets (no allocation, no DataView), stopping at the first layer the captured bytes cannot
// complete (snaplen cut) or that is malformed; everything before it stays filled in.
import type { PacketRecord } from '../capture/types';
import { LinkType } from '../capture/types';
import { DecodedPacket, IpProto, L3, Layer, MAX_SACK_BLOCKS, MAX_VLAN_TAGS } from './packet';
import { FragmentReassembler, type FragmentLimits, DEFAULT_FRAGMENT_LIMITS } from './fragments';

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_ARP = 0x0806;
const ETHERTYPE_RARP = 0x8035;
const TPID_8021Q = 0x8100;
const TPID_8021AD = 0x88a8;
const TPID_QINQ_OLD = 0x9100;

// BSD loopback address families (the NULL header is in the capturing host's byte order).
const AF_INET = 2;
const AF_INET6 = new Set([10, 24, 28, 30]); // Linux, NetBSD/OpenBSD, FreeBSD, Darwin

export interface DecodeCounters {
  frames: number;
  snaplenCut: number; // frames whose headers or IP payload were cut by the snaplen
  malformed: number;
  unknownLink: number; // link types we do not decode
  nonIp: number; // frames whose network layer is neither IP nor ARP/RARP
}

function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}
function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

export class PacketDecoder {
  readonly packet = new DecodedPacket();
  readonly fragments: FragmentReassembler;
  readonly counters: DecodeCounters = { frames: 0, snaplenCut: 0, malformed: 0, unknownLink: 0, nonIp: 0 };
  private upperWordsSet = false; // packet.src/dst words 0..2 hold an IPv6 address

  constructor(fragmentLimits: FragmentLimits = DEFAULT_FRAGMENT_LIMITS) {
    this.fragments = new FragmentReassembler(fragmentLimits);
  }

  /** Decode `record` into `this.packet` (returned for convenience). */
  decode(record: PacketRecord): DecodedPacket {
    const p = this.packet;
    p.index = record.index;
    p.sec = record.sec;
    p.ps = record.ps;
    p.caplen = record.caplen;
    p.wirelen = record.wirelen;
    p.linkType = record.linkType;
    p.interfaceId = record.interfaceId;
    p.fileOffset = record.fileOffset;
    p.frame = record.buf;
    p.frameOffset = record.offset;
    p.reset();
    this.counters.frames++;
    this.decodeLink(p, record.buf, record.offset, record.offset + record.caplen);
    if (p.snaplenCut) this.counters.snaplenCut++;
    if (p.malformed) this.counters.malformed++;
    return p;
  }

  private cut(p: DecodedPacket): void {
    p.snaplenCut = true;
  }

  private decodeLink(p: DecodedPacket, b: Uint8Array, o: number, end: number): void {
    switch (p.linkType) {
      case LinkType.ETHERNET: {
        if (end - o < 14) return this.cut(p);
        p.dstMacOffset = o;
        p.srcMacOffset = o + 6;
        return this.decodeEtherType(p, b, o + 12, end);
      }
      case LinkType.LINUX_SLL: {
        if (end - o < 16) return this.cut(p);
        p.sllPacketType = u16(b, o);
        if (u16(b, o + 2) === 1 && u16(b, o + 4) === 6) p.srcMacOffset = o + 6; // ARPHRD_ETHER
        return this.decodeEtherType(p, b, o + 14, end);
      }
      case LinkType.LINUX_SLL2: {
        if (end - o < 20) return this.cut(p);
        p.sllPacketType = b[o + 10];
        if (u16(b, o + 8) === 1 && b[o + 11] === 6) p.srcMacOffset = o + 12;
        p.etherType = u16(b, o);
        p.decodedTo = Layer.LINK;
        return this.decodeNetwork(p, b, o + 20, end, p.etherType);
      }
      case LinkType.RAW: {
        if (end - o < 1) return this.cut(p);
        p.decodedTo = Layer.LINK;
        const version = b[o] >> 4;
        if (version === 4) return this.decodeNetwork(p, b, o, end, ETHERTYPE_IPV4);
        if (version === 6) return this.decodeNetwork(p, b, o, end, ETHERTYPE_IPV6);
        p.l3 = L3.OTHER;
        this.counters.nonIp++;
        return;
      }
      case LinkType.IPV4:
        p.decodedTo = Layer.LINK;
        return this.decodeNetwork(p, b, o, end, ETHERTYPE_IPV4);
      case LinkType.IPV6:
        p.decodedTo = Layer.LINK;
        return this.decodeNetwork(p, b, o, end, ETHERTYPE_IPV6);
      case LinkType.NULL:
      case LinkType.LOOP: {
        if (end - o < 4) return this.cut(p);
        let family = p.linkType === LinkType.LOOP ? u32(b, o) : (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
        if (family > 0xffff) family = u32(b, o); // NULL written by a big-endian host
        p.decodedTo = Layer.LINK;
        if (family === AF_INET) return this.decodeNetwork(p, b, o + 4, end, ETHERTYPE_IPV4);
        if (AF_INET6.has(family)) return this.decodeNetwork(p, b, o + 4, end, ETHERTYPE_IPV6);
        p.l3 = L3.OTHER;
        this.counters.nonIp++;
        return;
      }
      default:
        this.counters.unknownLink++;
        return;
    }
  }

  /** `typeAt`: offset of an ethertype field, possibly followed by VLAN tags. */
  private decodeEtherType(p: DecodedPacket, b: Uint8Array, typeAt: number, end: number): void {
    let type = u16(b, typeAt);
    let o = typeAt + 2;
    while (type === TPID_8021Q || type === TPID_8021AD || type === TPID_QINQ_OLD) {
      if (end - o < 4) return this.cut(p);
      if (p.vlanCount < MAX_VLAN_TAGS) {
        p.vlanTpids[p.vlanCount] = type;
        p.vlanIds[p.vlanCount] = u16(b, o) & 0x0fff;
        p.vlanCount++;
      }
      type = u16(b, o + 2);
      o += 4;
    }
    p.etherType = type;
    p.decodedTo = Layer.LINK;
    this.decodeNetwork(p, b, o, end, type);
  }

  private decodeNetwork(p: DecodedPacket, b: Uint8Array, o: number, end: number, type: number): void {
    p.l3Offset = o;
    if (type === ETHERTYPE_IPV4) return this.decodeIpv4(p, b, o, end);
    if (type === ETHERTYPE_IPV6) return this.decodeIpv6(p, b, o, end);
    if (type === ETHERTYPE_ARP || type === ETHERTYPE_RARP) return this.decodeArp(p, b, o, end, type);
    p.l3 = L3.OTHER;
    this.counters.nonIp++;
  }

  private decodeIpv4(p: DecodedPacket, b: Uint8Array, o: number, end: number): void {
    p.l3 = L3.IPV4;
    if (end - o < 20) return this.cut(p);
    const headerLength = (b[o] & 0x0f) * 4;
    if (b[o] >> 4 !== 4 || headerLength < 20) {
      p.malformed = true;
      return;
    }
    if (end - o < headerLength) return this.cut(p);
    let total = u16(b, o + 2);
    // Total length 0 is what TSO/GSO super-frames captured on the sender carry: use the frame.
    if (total === 0) total = end - o;
    if (total < headerLength) {
      p.malformed = true;
      return;
    }
    p.ipHeaderLength = headerLength;
    p.ipTotalLength = total;
    p.ipId = u16(b, o + 4);
    const fragField = u16(b, o + 6);
    p.ttl = b[o + 8];
    p.protocol = b[o + 9];
    if (this.upperWordsSet) {
      // words 0..2 are zero for IPv4; clear them only after an IPv6 packet wrote them
      p.src[0] = p.src[1] = p.src[2] = 0;
      p.dst[0] = p.dst[1] = p.dst[2] = 0;
      this.upperWordsSet = false;
    }
    p.src[3] = u32(b, o + 12);
    p.dst[3] = u32(b, o + 16);
    p.decodedTo = Layer.NETWORK;
    const payloadStart = o + headerLength;
    const payloadEnd = o + total; // Ethernet padding beyond the IP datagram is ignored
    p.moreFragments = (fragField & 0x2000) !== 0;
    p.fragmentOffset = (fragField & 0x1fff) * 8;
    if (p.moreFragments || p.fragmentOffset !== 0) {
      p.isFragment = true;
      if (payloadEnd > end) return this.cut(p); // a cut fragment cannot be reassembled
      const key = `4:${p.src[3]}:${p.dst[3]}:${p.ipId}:${p.protocol}`;
      const whole = this.fragments.add(key, p.fragmentOffset, p.moreFragments, b, payloadStart, payloadEnd, p.sec);
      if (!whole) return;
      p.reassembled = true;
      p.buf = whole;
      return this.decodeTransport(p, whole, 0, whole.length, whole.length);
    }
    this.decodeTransport(p, b, payloadStart, Math.min(end, payloadEnd), payloadEnd);
  }

  private decodeIpv6(p: DecodedPacket, b: Uint8Array, o: number, end: number): void {
    p.l3 = L3.IPV6;
    if (end - o < 40) return this.cut(p);
    if (b[o] >> 4 !== 6) {
      p.malformed = true;
      return;
    }
    const payloadLength = u16(b, o + 4);
    let next = b[o + 6];
    p.ipId = 0;
    p.fragmentOffset = 0;
    p.moreFragments = false;
    p.ttl = b[o + 7];
    this.upperWordsSet = true;
    for (let i = 0; i < 4; i++) {
      p.src[i] = u32(b, o + 8 + 4 * i);
      p.dst[i] = u32(b, o + 24 + 4 * i);
    }
    // Payload length 0 with a hop-by-hop jumbo option (or a GSO frame): use the frame.
    const payloadEnd = payloadLength === 0 ? end : o + 40 + payloadLength;
    p.ipTotalLength = payloadEnd - o;
    let h = o + 40;
    let fragmentAt = -1;
    // Extension headers (RFC 8200 §4): hop-by-hop 0, routing 43, fragment 44, destination 60,
    // AH 51 (length in 4-byte units), mobility 135, HIP 139, shim6 140.
    for (;;) {
      if (next === 0 || next === 43 || next === 60 || next === 135 || next === 139 || next === 140) {
        if (end - h < 2) return this.cut(p);
        const length = (b[h + 1] + 1) * 8;
        next = b[h];
        h += length;
      } else if (next === 51) {
        if (end - h < 2) return this.cut(p);
        const length = (b[h + 1] + 2) * 4;
        next = b[h];
        h += length;
      } else if (next === 44) {
        if (end - h < 8) return this.cut(p);
        fragmentAt = h;
        next = b[h];
        h += 8;
      } else break;
      if (h > payloadEnd) {
        p.malformed = true;
        return;
      }
    }
    if (h > end) return this.cut(p);
    p.protocol = next;
    p.ipHeaderLength = h - o;
    p.decodedTo = Layer.NETWORK;
    if (fragmentAt >= 0) {
      const field = u16(b, fragmentAt + 2);
      p.ipId = u32(b, fragmentAt + 4);
      p.fragmentOffset = field & 0xfff8;
      p.moreFragments = (field & 1) !== 0;
      if (p.moreFragments || p.fragmentOffset !== 0) {
        p.isFragment = true;
        if (payloadEnd > end) return this.cut(p);
        const key = `6:${p.src.join(',')}:${p.dst.join(',')}:${p.ipId}`;
        const whole = this.fragments.add(key, p.fragmentOffset, p.moreFragments, b, h, payloadEnd, p.sec);
        if (!whole) return;
        p.reassembled = true;
        p.buf = whole;
        return this.decodeTransport(p, whole, 0, whole.length, whole.length);
      }
      // An atomic fragment (offset 0, M = 0) is a whole datagram.
    }
    this.decodeTransport(p, b, h, Math.min(end, payloadEnd), payloadEnd);
  }

  /** Transport header at `o`; captured bytes end at `end`, the IP payload at `ipEnd` (≥ end when cut). */
  private decodeTransport(p: DecodedPacket, b: Uint8Array, o: number, end: number, ipEnd: number): void {
    p.l4Offset = o;
    if (ipEnd > end) p.snaplenCut = true; // payload cut; headers may still be complete
    switch (p.protocol) {
      case IpProto.TCP:
        return this.decodeTcp(p, b, o, end, ipEnd);
      case IpProto.UDP:
        return this.decodeUdp(p, b, o, end, ipEnd);
      case IpProto.ICMP:
      case IpProto.ICMPV6:
        return this.decodeIcmp(p, b, o, end, ipEnd);
      default:
        p.payloadOffset = o;
        p.payloadLength = Math.max(0, end - o);
        p.payloadWireLength = Math.max(0, ipEnd - o);
    }
  }

  private decodeTcp(p: DecodedPacket, b: Uint8Array, o: number, end: number, ipEnd: number): void {
    if (end - o < 20) return this.cut(p);
    const headerLength = (b[o + 12] >> 4) * 4;
    if (headerLength < 20 || o + headerLength > ipEnd) {
      p.malformed = true;
      return;
    }
    if (o + headerLength > end) return this.cut(p);
    p.srcPort = u16(b, o);
    p.dstPort = u16(b, o + 2);
    p.seq = u32(b, o + 4);
    p.ack = u32(b, o + 8);
    p.tcpFlags = b[o + 13] | ((b[o + 12] & 1) << 8);
    p.window = u16(b, o + 14);
    p.tcpHeaderLength = headerLength;
    p.mss = -1;
    p.windowScale = -1;
    p.sackPermitted = false;
    p.sackCount = 0;
    p.hasTimestamps = false;
    if (headerLength > 20) this.decodeTcpOptions(p, b, o + 20, o + headerLength);
    p.payloadOffset = o + headerLength;
    p.payloadLength = Math.max(0, end - p.payloadOffset);
    p.payloadWireLength = ipEnd - p.payloadOffset;
    p.decodedTo = Layer.TRANSPORT;
  }

  private decodeTcpOptions(p: DecodedPacket, b: Uint8Array, o: number, end: number): void {
    // Linux data segments carry exactly NOP NOP TIMESTAMPS: read those without the option loop.
    if (end - o === 12 && b[o] === 1 && b[o + 1] === 1 && b[o + 2] === 8 && b[o + 3] === 10) {
      p.hasTimestamps = true;
      p.tsVal = u32(b, o + 4);
      p.tsEcr = u32(b, o + 8);
      return;
    }
    while (o < end) {
      const kind = b[o];
      if (kind === 0) return; // end of option list
      if (kind === 1) { o++; continue; } // NOP
      if (o + 1 >= end) return;
      const length = b[o + 1];
      if (length < 2 || o + length > end) return; // malformed option: stop parsing options
      switch (kind) {
        case 2:
          if (length === 4) p.mss = u16(b, o + 2);
          break;
        case 3:
          if (length === 3) p.windowScale = b[o + 2];
          break;
        case 4:
          p.sackPermitted = true;
          break;
        case 5: {
          const blocks = Math.min(MAX_SACK_BLOCKS, (length - 2) >> 3);
          for (let i = 0; i < blocks; i++) {
            p.sackBlocks[2 * i] = u32(b, o + 2 + 8 * i);
            p.sackBlocks[2 * i + 1] = u32(b, o + 6 + 8 * i);
          }
          p.sackCount = blocks;
          break;
        }
        case 8:
          if (length === 10) {
            p.hasTimestamps = true;
            p.tsVal = u32(b, o + 2);
            p.tsEcr = u32(b, o + 6);
          }
          break;
      }
      o += length;
    }
  }

  private decodeUdp(p: DecodedPacket, b: Uint8Array, o: number, end: number, ipEnd: number): void {
    if (end - o < 8) return this.cut(p);
    p.srcPort = u16(b, o);
    p.dstPort = u16(b, o + 2);
    const length = u16(b, o + 4);
    // Length 0 is legal for IPv6 jumbograms; otherwise the UDP length must fit the IP payload.
    const udpEnd = length === 0 ? ipEnd : o + length;
    if (length !== 0 && (length < 8 || udpEnd > ipEnd)) {
      p.malformed = true;
      return;
    }
    p.payloadOffset = o + 8;
    p.payloadLength = Math.max(0, Math.min(end, udpEnd) - p.payloadOffset);
    p.payloadWireLength = udpEnd - p.payloadOffset;
    p.decodedTo = Layer.TRANSPORT;
  }

  private decodeIcmp(p: DecodedPacket, b: Uint8Array, o: number, end: number, ipEnd: number): void {
    if (end - o < 4) return this.cut(p);
    p.icmpType = b[o];
    p.icmpCode = b[o + 1];
    p.icmpId = -1;
    p.icmpSeq = -1;
    const echo = p.protocol === IpProto.ICMP ? p.icmpType === 0 || p.icmpType === 8 : p.icmpType === 128 || p.icmpType === 129;
    if (end - o < 8) {
      if (echo) return this.cut(p);
    } else if (echo) {
      p.icmpId = u16(b, o + 4);
      p.icmpSeq = u16(b, o + 6);
    }
    p.payloadOffset = Math.min(o + 8, end);
    p.payloadLength = Math.max(0, end - p.payloadOffset);
    p.payloadWireLength = Math.max(0, ipEnd - (o + 8));
    p.decodedTo = Layer.TRANSPORT;
  }

  private decodeArp(p: DecodedPacket, b: Uint8Array, o: number, end: number, type: number): void {
    p.l3 = type === ETHERTYPE_ARP ? L3.ARP : L3.RARP;
    if (end - o < 8) return this.cut(p);
    const hardwareLength = b[o + 4];
    const protocolLength = b[o + 5];
    p.arpOp = u16(b, o + 6);
    p.arpSenderMacOffset = -1;
    p.arpTargetMacOffset = -1;
    p.arpSenderIp = 0;
    p.arpTargetIp = 0;
    const bodyLength = 8 + 2 * (hardwareLength + protocolLength);
    if (end - o < bodyLength) return this.cut(p);
    if (hardwareLength === 6 && protocolLength === 4 && u16(b, o + 2) === ETHERTYPE_IPV4) {
      p.arpSenderMacOffset = o + 8;
      p.arpSenderIp = u32(b, o + 14);
      p.arpTargetMacOffset = o + 18;
      p.arpTargetIp = u32(b, o + 24);
    }
    p.decodedTo = Layer.NETWORK;
  }
}
