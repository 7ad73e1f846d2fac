// Pipeline hook: turns decoded echo requests/replies and ARP/RARP announcements into ProbeTracker
// events. Only ICMP echo and ARP frames allocate (address strings); everything else is one test.
import { formatIpv4, IpProto, L3, type DecodedPacket } from '../../decode/packet';
import type { PacketObserver } from '../../flow/pipeline';
import { ProbeTracker } from './probes';

const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;
const ICMPV6_ECHO_REQUEST = 128;
const ICMPV6_ECHO_REPLY = 129;
const RARP_REQUEST_REVERSE = 3; // what QEMU's announce (qemu_announce_self) sends
const ARP_REQUEST = 1;
const ARP_REPLY = 2;

export class ProbeObserver implements PacketObserver {
  constructor(readonly tracker: ProbeTracker = new ProbeTracker()) {}

  packet(p: DecodedPacket): void {
    // icmpType is reset for every packet; the echo id/seq are meaningful only under it
    if (p.icmpType >= 0) {
      if (p.icmpId >= 0) this.echo(p);
    } else if (p.arpOp >= 0 && p.arpSenderMacOffset >= 0) {
      this.arp(p);
    }
  }

  private echo(p: DecodedPacket): void {
    const v6 = p.protocol === IpProto.ICMPV6;
    const type = p.icmpType;
    const request = v6 ? type === ICMPV6_ECHO_REQUEST : type === ICMP_ECHO_REQUEST;
    const reply = v6 ? type === ICMPV6_ECHO_REPLY : type === ICMP_ECHO_REPLY;
    if (!request && !reply) return;
    this.tracker.echo({
      at: p.at(),
      src: p.srcText(),
      dst: p.dstText(),
      kind: request ? 'request' : 'reply',
      id: p.icmpId,
      seq: p.icmpSeq,
      packet: p.index,
      srcMac: p.srcMacOffset >= 0 ? p.macText(p.srcMacOffset) : undefined,
    });
  }

  private arp(p: DecodedPacket): void {
    if (p.l3 === L3.RARP) {
      if (p.arpOp !== RARP_REQUEST_REVERSE) return;
      this.tracker.announcement({ at: p.at(), kind: 'rarp', mac: p.macText(p.arpSenderMacOffset), packet: p.index });
      return;
    }
    // Gratuitous ARP: a host announcing its own address (sender IP = target IP).
    if ((p.arpOp === ARP_REQUEST || p.arpOp === ARP_REPLY) && p.arpSenderIp !== 0 && p.arpSenderIp === p.arpTargetIp) {
      this.tracker.announcement({ at: p.at(), kind: 'garp', mac: p.macText(p.arpSenderMacOffset), ip: formatIpv4(p.arpSenderIp), packet: p.index });
    }
  }
}
