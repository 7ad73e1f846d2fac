// The observer on frames as the decoder sees them: ICMPv4 and ICMPv6 echo, QEMU's RARP
// announcement, a gratuitous ARP, and frames it must ignore.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketDecoder } from '../../../src/decode/decoder';
import { LinkType, type PacketRecord } from '../../../src/capture/types';
import { ProbeObserver } from '../../../src/protocols/icmp/observer';

const GUEST_MAC = [0x52, 0x54, 0x00, 0x77, 0x00, 0x10];
const CLIENT_MAC = [0x52, 0x54, 0x00, 0x77, 0x00, 0x03];
const BROADCAST = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

function be16(v: number): number[] {
  return [(v >> 8) & 255, v & 255];
}

function ethernet(dst: number[], src: number[], etherType: number, payload: number[]): number[] {
  return [...dst, ...src, ...be16(etherType), ...payload];
}

function ipv4Icmp(src: number[], dst: number[], type: number, id: number, seq: number): number[] {
  const icmp = [type, 0, 0, 0, ...be16(id), ...be16(seq), ...new Array(8).fill(0x61)];
  const total = 20 + icmp.length;
  return [0x45, 0, ...be16(total), 0, 1, 0x40, 0, 64, 1, 0, 0, ...src, ...dst, ...icmp];
}

function ipv6Icmp(src: number[], dst: number[], type: number, id: number, seq: number): number[] {
  const icmp = [type, 0, 0, 0, ...be16(id), ...be16(seq), ...new Array(8).fill(0x61)];
  return [0x60, 0, 0, 0, ...be16(icmp.length), 58, 64, ...src, ...dst, ...icmp];
}

function arp(etherType: number, op: number, senderMac: number[], senderIp: number[], targetMac: number[], targetIp: number[]): number[] {
  return ethernet(BROADCAST, senderMac, etherType, [0, 1, 0x08, 0, 6, 4, ...be16(op), ...senderMac, ...senderIp, ...targetMac, ...targetIp]);
}

const V6_CLIENT = [0xfd, 0, ...new Array(13).fill(0), 3];
const V6_GUEST = [0xfd, 0, ...new Array(13).fill(0), 0x10];

function feed(frames: number[][]): ProbeObserver {
  const decoder = new PacketDecoder();
  const observer = new ProbeObserver();
  frames.forEach((frame, i) => {
    const buf = Uint8Array.from(frame);
    const record: PacketRecord = { buf, offset: 0, caplen: buf.length, wirelen: buf.length, sec: 100, ps: i * 1_000_000_000, interfaceId: 0, linkType: LinkType.ETHERNET, index: i + 1, fileOffset: 0 };
    observer.packet(decoder.decode(record));
  });
  return observer;
}

test('ICMPv4 and ICMPv6 echo pairs become two probe flows; RARP and gratuitous ARP become announcements', () => {
  const client = [10, 77, 0, 3];
  const guest = [10, 77, 0, 10];
  const observer = feed([
    ethernet(GUEST_MAC, CLIENT_MAC, 0x0800, ipv4Icmp(client, guest, 8, 0x1234, 1)),
    ethernet(CLIENT_MAC, GUEST_MAC, 0x0800, ipv4Icmp(guest, client, 0, 0x1234, 1)),
    ethernet(GUEST_MAC, CLIENT_MAC, 0x0800, ipv4Icmp(client, guest, 8, 0x1234, 2)),
    ethernet(GUEST_MAC, CLIENT_MAC, 0x86dd, ipv6Icmp(V6_CLIENT, V6_GUEST, 128, 0x99, 7)),
    ethernet(CLIENT_MAC, GUEST_MAC, 0x86dd, ipv6Icmp(V6_GUEST, V6_CLIENT, 129, 0x99, 7)),
    ethernet(GUEST_MAC, CLIENT_MAC, 0x0800, ipv4Icmp(client, guest, 3, 0, 0)), // destination unreachable: ignored
    arp(0x8035, 3, GUEST_MAC, [0, 0, 0, 0], GUEST_MAC, [0, 0, 0, 0]), // QEMU's announce
    arp(0x0806, 1, GUEST_MAC, guest, [0, 0, 0, 0, 0, 0], guest), // gratuitous ARP
    arp(0x0806, 1, CLIENT_MAC, client, [0, 0, 0, 0, 0, 0], guest), // ordinary who-has: ignored
  ]);
  const flows = observer.tracker.probeFlows().map((f) => [f.pinger, f.target, f.id, f.requests, f.replies]);
  assert.deepEqual(flows, [
    ['10.77.0.3', '10.77.0.10', 0x1234, 2, 1],
    ['fd00::3', 'fd00::10', 0x99, 1, 1],
  ]);
  const announcements = observer.tracker.announcementEvents().map((a) => [a.kind, a.mac, a.ip, a.packet]);
  assert.deepEqual(announcements, [
    ['rarp', '52:54:00:77:00:10', undefined, 7],
    ['garp', '52:54:00:77:00:10', '10.77.0.10', 8],
  ]);
});
