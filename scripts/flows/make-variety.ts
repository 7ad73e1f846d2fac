// Writes small captures of link types and IP variants the real migrations do not have (QinQ,
// IPv6 extension headers, IPv4/IPv6 fragments, SLL2, NULL, raw IP, port reuse) to
// fixtures/flows/variety-*.pcap, and their tshark `-z conv,tcp` oracle beside each when tshark
// is installed:  node dist/scripts/flows/make-variety.js [outDir]
// The frames come from the byte-level builders in test/decode/frames.ts (RFC layouts).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LinkType } from '../../src/capture/types';
import { encodePcap, type FrameToWrite } from '../../src/capture/writer';
import { ether, ipv4, ipv6, nullHeader, sll2, tcp, udp } from '../../test/decode/frames';

const SYN = 2;
const ACK = 16;
const FIN = 1;
const PSH = 8;

interface Capture { name: string; linkType: number; frames: Uint8Array[] }

/** A whole connection's TCP segments (handshake, data both ways, FIN/FIN/ACK). */
function connection(cport: number, sport: number, isnC: number, isnS: number, requestBytes: number, replyBytes: number): { fromClient: boolean; segment: Uint8Array }[] {
  const out: { fromClient: boolean; segment: Uint8Array }[] = [];
  const c = (spec: Parameters<typeof tcp>[0]) => out.push({ fromClient: true, segment: tcp(spec) });
  const s = (spec: Parameters<typeof tcp>[0]) => out.push({ fromClient: false, segment: tcp(spec) });
  const fill = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 31 + seed) & 255);
  c({ sport: cport, dport: sport, seq: isnC, flags: SYN, options: [2, 4, 5, 0xb4] });
  s({ sport, dport: cport, seq: isnS, ack: isnC + 1, flags: SYN | ACK, options: [2, 4, 5, 0xb4] });
  c({ sport: cport, dport: sport, seq: isnC + 1, ack: isnS + 1, flags: ACK });
  let sent = 0;
  while (sent < requestBytes) {
    const n = Math.min(1400, requestBytes - sent);
    c({ sport: cport, dport: sport, seq: isnC + 1 + sent, ack: isnS + 1, flags: ACK | PSH, payload: fill(n, sent) });
    sent += n;
  }
  s({ sport, dport: cport, seq: isnS + 1, ack: isnC + 1 + requestBytes, flags: ACK | PSH, payload: fill(replyBytes, 7) });
  c({ sport: cport, dport: sport, seq: isnC + 1 + requestBytes, ack: isnS + 1 + replyBytes, flags: FIN | ACK });
  s({ sport, dport: cport, seq: isnS + 1 + replyBytes, ack: isnC + 2 + requestBytes, flags: FIN | ACK });
  c({ sport: cport, dport: sport, seq: isnC + 2 + requestBytes, ack: isnS + 2 + replyBytes, flags: ACK });
  return out;
}

function captures(): Capture[] {
  const v4 = (src: string, dst: string, segment: Uint8Array, id = 1) => ipv4({ src, dst, protocol: 6, payload: segment, id });
  const list: Capture[] = [];

  // Ethernet, 802.1ad + 802.1Q, IPv6 with hop-by-hop and destination options; two connections
  // on the same ports one after the other (port reuse), and one IPv4 connection.
  const qinq: Uint8Array[] = [];
  for (const [isn, bytes] of [[1000, 3000], [900000, 500]] as const) {
    for (const { fromClient, segment } of connection(40000, 16509, isn, isn * 3, bytes, 120)) {
      const [src, dst] = fromClient ? ['2001:db8::1', '2001:db8::2'] : ['2001:db8::2', '2001:db8::1'];
      qinq.push(ether(0x86dd, ipv6(src, dst, 6, segment, [{ type: 0, body: [1, 4, 0, 0, 0, 0] }, { type: 60 }]), [[0x88a8, 100], [0x8100, 200]]));
    }
  }
  for (const { fromClient, segment } of connection(50000, 49152, 5, 6, 5000, 0)) {
    qinq.push(ether(0x0800, fromClient ? v4('10.0.0.1', '10.0.0.2', segment) : v4('10.0.0.2', '10.0.0.1', segment), [[0x8100, 7]]));
  }
  list.push({ name: 'qinq-ipv6-ext', linkType: LinkType.ETHERNET, frames: qinq });

  // IPv4 fragments: every client segment above 600 bytes split in three, sent last-first.
  const frag: Uint8Array[] = [];
  let id = 100;
  for (const { fromClient, segment } of connection(41000, 16509, 77, 88, 4000, 300)) {
    const [src, dst] = fromClient ? ['10.77.0.1', '10.77.0.2'] : ['10.77.0.2', '10.77.0.1'];
    if (segment.length <= 600) {
      frag.push(ether(0x0800, v4(src, dst, segment, id++)));
      continue;
    }
    const cuts = [0, 256, 512, segment.length];
    const parts = [0, 1, 2].map((i) => ether(0x0800, ipv4({ src, dst, protocol: 6, id, fragmentOffset: cuts[i], moreFragments: i < 2, payload: segment.subarray(cuts[i], cuts[i + 1]) })));
    frag.push(parts[2], parts[0], parts[1]);
    id++;
  }
  frag.push(ether(0x0800, ipv4({ src: '10.77.0.3', dst: '10.77.0.10', protocol: 17, payload: udp(5000, 6000, [1, 2, 3]) })));
  list.push({ name: 'ipv4-fragments', linkType: LinkType.ETHERNET, frames: frag });

  // IPv6 fragment headers.
  const frag6: Uint8Array[] = [];
  for (const { fromClient, segment } of connection(42000, 16509, 1, 2, 2500, 40)) {
    const [src, dst] = fromClient ? ['fd00::1', 'fd00::2'] : ['fd00::2', 'fd00::1'];
    if (segment.length <= 600) {
      frag6.push(ether(0x86dd, ipv6(src, dst, 6, segment)));
      continue;
    }
    frag6.push(ether(0x86dd, ipv6(src, dst, 6, segment.subarray(0, 512), [{ type: 44, fragmentOffset: 0, moreFragments: true, id }])));
    frag6.push(ether(0x86dd, ipv6(src, dst, 6, segment.subarray(512), [{ type: 44, fragmentOffset: 512, moreFragments: false, id }])));
    id++;
  }
  list.push({ name: 'ipv6-fragments', linkType: LinkType.ETHERNET, frames: frag6 });

  // Linux cooked v2, BSD NULL (little-endian, AF_INET6 = 30 as on Darwin), raw IPv4.
  const sllFrames = connection(43000, 16509, 10, 20, 2000, 60).map(({ fromClient, segment }) =>
    sll2(0x0800, fromClient ? v4('192.168.1.1', '192.168.1.2', segment) : v4('192.168.1.2', '192.168.1.1', segment), fromClient ? 4 : 0));
  list.push({ name: 'sll2', linkType: LinkType.LINUX_SLL2, frames: sllFrames });
  const nullFrames = connection(44000, 16509, 10, 20, 1000, 60).map(({ fromClient, segment }) =>
    nullHeader(30, true, fromClient ? ipv6('fe80::1', 'fe80::2', 6, segment) : ipv6('fe80::2', 'fe80::1', 6, segment)));
  list.push({ name: 'null-ipv6', linkType: LinkType.NULL, frames: nullFrames });
  const rawFrames = connection(45000, 49152, 0xfffff000, 0xffffff00, 9000, 10).map(({ fromClient, segment }) =>
    fromClient ? v4('172.16.0.1', '172.16.0.2', segment) : v4('172.16.0.2', '172.16.0.1', segment));
  list.push({ name: 'raw-ipv4-seq-wrap', linkType: LinkType.RAW, frames: rawFrames });
  return list;
}

function main(): void {
  const outDir = process.argv[2] ?? path.resolve(__dirname, '..', '..', '..', 'fixtures', 'flows');
  const hasTshark = spawnSync('sh', ['-c', 'command -v tshark'], { stdio: 'ignore' }).status === 0;
  for (const capture of captures()) {
    const frames: FrameToWrite[] = capture.frames.map((data, i) => ({ sec: 1_700_000_000, ps: (i + 1) * 1_000_000_000, data }));
    const file = path.join(outDir, `variety-${capture.name}.pcap`);
    fs.writeFileSync(file, encodePcap(frames, { nanosecond: true, linkType: capture.linkType }));
    if (hasTshark) {
      const conv = spawnSync('tshark', ['-q', '-n', '-z', 'conv,tcp', '-r', file], { encoding: 'utf8' });
      fs.writeFileSync(file.replace(/\.pcap$/, '.conv-tcp.txt'), conv.stdout);
    }
    console.log(`${file}: ${frames.length} frames${hasTshark ? ' + tshark conv,tcp' : ''}`);
  }
}

main();
