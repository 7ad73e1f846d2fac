// Facts a lab run's ground truth must agree with, read straight from its capture with the lab's
// own tiny pcap walk (independent of migscope's decoders): TCP conversations and ICMP echoes.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ipv4Info, readPcap } from '../../scripts/lab/pcap-records';
import { isMigrationDataPort } from '../../scripts/lab/slim-capture';

export interface Conversation {
  a: string; // "ip:port", lower endpoint first
  b: string;
  packets: number;
  wireBytes: number;
  payloadBytes: number; // TCP payload per IP total length (exact even when slimmed)
  syn: boolean;
}

export interface CaptureFacts {
  frames: number;
  conversations: Map<string, Conversation>;
  /** Echo requests client → guest by sequence number (first seen), and the answered ones. */
  echoRequests: Set<number>;
  echoReplies: Set<number>;
  /** Frame number → "src:sport>dst:dport" of TCP frames, to check oracle rows against. */
  tcpFrames: Map<number, string>;
}

export async function captureFacts(file: string, client = '10.77.0.3', guest = '10.77.0.10'): Promise<CaptureFacts> {
  const facts: CaptureFacts = { frames: 0, conversations: new Map(), echoRequests: new Set(), echoReplies: new Set(), tcpFrames: new Map() };
  const idCounts = new Map<number, number>();
  const echoes: { type: number; id: number; seq: number }[] = [];
  facts.frames = await readPcap(
    file,
    () => {},
    (r) => {
      const info = ipv4Info(r.data);
      if (!info) return;
      if (info.proto === 6) {
        const s = `${info.src}:${info.sport}`;
        const d = `${info.dst}:${info.dport}`;
        const [a, b] = s < d ? [s, d] : [d, s];
        const key = `${a}-${b}`;
        let c = facts.conversations.get(key);
        if (!c) facts.conversations.set(key, (c = { a, b, packets: 0, wireBytes: 0, payloadBytes: 0, syn: false }));
        const ipTotal = r.data.readUInt16BE(ipHeaderOffset(r.data) + 2);
        c.packets++;
        c.wireBytes += r.wirelen;
        c.payloadBytes += ipTotal - (info.payloadOffset - ipHeaderOffset(r.data));
        if (r.data.length > info.l4Offset + 13 && r.data[info.l4Offset + 13] & 0x02) c.syn = true;
        facts.tcpFrames.set(r.index, `${s}>${d}`);
      } else if (info.proto === 1 && r.data.length >= info.l4Offset + 8) {
        const type = r.data[info.l4Offset];
        const id = r.data.readUInt16BE(info.l4Offset + 4);
        const seq = r.data.readUInt16BE(info.l4Offset + 6);
        if (type === 8 && info.src === client && info.dst === guest) {
          echoes.push({ type, id, seq });
          idCounts.set(id, (idCounts.get(id) ?? 0) + 1);
        } else if (type === 0 && info.src === guest && info.dst === client) echoes.push({ type, id, seq });
      }
    },
  );
  // The 1 ms pinger is the identifier with most requests (boot checks use others).
  const pingId = [...idCounts].sort((x, y) => y[1] - x[1])[0]?.[0];
  for (const e of echoes) if (e.id === pingId) (e.type === 8 ? facts.echoRequests : facts.echoReplies).add(e.seq);
  return facts;
}

function ipHeaderOffset(frame: Buffer): number {
  return frame.readUInt16BE(12) === 0x8100 ? 18 : 14;
}

export const isLibvirtConversation = (c: Conversation) => c.a.endsWith(':16509') || c.b.endsWith(':16509');
export const isMigrationDataConversation = (c: Conversation) =>
  [c.a, c.b].some((e) => isMigrationDataPort(Number(e.split(':')[1])));
const between = (c: Conversation, x: string, y: string) =>
  (c.a.startsWith(`${x}:`) && c.b.startsWith(`${y}:`)) || (c.a.startsWith(`${y}:`) && c.b.startsWith(`${x}:`));

/** The capture file beside a ground-truth JSON (plain or gzipped). */
export function captureOf(jsonFile: string, truth: { capture: string }): string {
  const plain = path.join(path.dirname(jsonFile), truth.capture);
  for (const f of [plain, `${plain}.gz`]) if (fs.existsSync(f)) return f;
  throw new Error(`${jsonFile}: capture ${truth.capture}(.gz) missing`);
}

/** ICMP sequence numbers wrap at 65536; the lab's runs stay far below that. */
function unansweredInterior(f: CaptureFacts): number[] {
  const maxAnswered = Math.max(0, ...f.echoReplies);
  return [...f.echoRequests].filter((s) => s < maxAnswered && !f.echoReplies.has(s)).sort((a, b) => a - b);
}

/** Everything the lab issue promises about one run, asserted against its capture. */
export async function assertRunConsistent(jsonFile: string): Promise<CaptureFacts> {
  const truth = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
  const facts = await captureFacts(captureOf(jsonFile, truth));
  const convs = [...facts.conversations.values()];
  const src = '10.77.0.1';
  const dst = '10.77.0.2';
  const cli = '10.77.0.3';
  const libvirt = convs.filter(isLibvirtConversation);
  if (truth.mode === 'managed') {
    // The client drives both daemons: one libvirt conversation to each, none between them.
    assert.ok(libvirt.some((c) => between(c, cli, src) && c.syn && c.payloadBytes > 0), `${jsonFile}: client↔src libvirt`);
    assert.ok(libvirt.some((c) => between(c, cli, dst) && c.syn && c.payloadBytes > 0), `${jsonFile}: client↔dst libvirt`);
  } else {
    assert.ok(libvirt.some((c) => between(c, src, dst) && c.syn && c.payloadBytes > 0), `${jsonFile}: libvirt conversation src↔dst`);
  }
  const data = convs.filter((c) => isMigrationDataConversation(c) && between(c, src, dst));
  const dataBytes = data.reduce((n, c) => n + c.payloadBytes, 0);
  const processed: number | undefined =
    truth.job_figures?.job_completed_event?.dataProcessedBytes ?? truth.job_figures?.domjobinfo_dst?.dataProcessedBytes;
  if (truth.mode === 'fail') {
    assert.equal(data.length, 0, `${jsonFile}: a rejected prepare opens no migration data connection`);
  } else if (truth.mode === 'tunnelled') {
    assert.equal(data.length, 0, `${jsonFile}: tunnelled: no native data connection`);
    const rpcBytes = libvirt.filter((c) => between(c, src, dst)).reduce((n, c) => n + c.payloadBytes, 0);
    assert.ok(processed !== undefined && rpcBytes > processed, `${jsonFile}: the memory (${processed} B) rides in libvirt RPC (${rpcBytes} B)`);
  } else {
    assert.ok(data.length >= 1 && data.every((c) => c.syn), `${jsonFile}: migration data connection with its handshake`);
    if (truth.mode === 'cancel') assert.ok(dataBytes > 0, `${jsonFile}: partial stream before the abort`);
    // The stream carries what QEMU reports processed, plus a little framing (under 2 %).
    else if (processed !== undefined) assert.ok(dataBytes >= processed && dataBytes < processed * 1.02, `${jsonFile}: stream ${dataBytes} B vs processed ${processed} B`);
  }
  // Ping log and capture agree: every request the pinger sent is on the wire, and the same
  // requests went unanswered (excluding the tail still in flight when ping was stopped).
  assert.equal(facts.echoRequests.size, truth.ping.transmitted, `${jsonFile}: echo requests in capture vs ping transmitted`);
  assert.deepEqual(unansweredInterior(facts), truth.ping.unanswered_seqs, `${jsonFile}: unanswered sequence numbers`);
  const replies = facts.echoReplies.size;
  assert.ok(replies >= truth.ping.received && replies <= truth.ping.received + truth.ping.unanswered_tail, `${jsonFile}: ${replies} echo replies in capture vs ping received ${truth.ping.received}`);
  assertOraclesAgree(jsonFile, truth, facts);
  return facts;
}

/** tshark's files beside the run (an independent decoder) must describe the same frames. */
function assertOraclesAgree(jsonFile: string, truth: { files: Record<string, string> }, facts: CaptureFacts): void {
  const dir = path.dirname(jsonFile);
  const tsv = fs.readFileSync(path.join(dir, truth.files['tshark-libvirt.tsv']), 'utf8').trim().split('\n');
  assert.ok(tsv.length > 1, `${jsonFile}: tshark decoded no libvirt message`);
  const cols = tsv[0].split('\t');
  const at = (name: string) => cols.indexOf(name);
  for (const row of tsv.slice(1)) {
    const f = row.split('\t');
    // A frame holding several messages lists comma-separated values; the endpoints are single.
    const expect = `${f[at('ip.src')]}:${f[at('tcp.srcport')]}>${f[at('ip.dst')]}:${f[at('tcp.dstport')]}`;
    assert.equal(facts.tcpFrames.get(Number(f[at('frame.number')])), expect, `${jsonFile}: tshark frame ${f[0]}`);
  }
  // conv,tcp: "A <-> B  frames bytes  frames bytes  total-frames total-bytes ..."
  const conv = fs.readFileSync(path.join(dir, truth.files['conv-tcp.txt']), 'utf8');
  let listed = 0;
  for (const line of conv.split('\n')) {
    const m = /^(\S+:\d+)\s+<->\s+(\S+:\d+)\s+\d+\s+\d+ \S+\s+\d+\s+\d+ \S+\s+(\d+)\s/.exec(line);
    if (!m) continue;
    listed++;
    const [a, b] = m[1] < m[2] ? [m[1], m[2]] : [m[2], m[1]];
    assert.equal(facts.conversations.get(`${a}-${b}`)?.packets, Number(m[3]), `${jsonFile}: frames of ${a} <-> ${b}`);
  }
  assert.equal(listed, facts.conversations.size, `${jsonFile}: conversations listed by tshark`);
}
