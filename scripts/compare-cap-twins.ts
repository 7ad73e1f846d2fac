// Compares DPMI traces with their pcap twins: for every NAME.cap (or .cap.gz) in a folder tree
// that has a NAME.pcap (or .pcap.gz) beside it, both are read with migscope's readers and
// compared frame by frame: bytes, captured and wire length, timestamp. pcap2cap converts through
// libpcap's microsecond reader, so the .cap time must equal the pcap time cut to the microsecond.
// Prints a Markdown table; exit code 1 when any pair differs.
//   node dist/scripts/compare-cap-twins.js <folder> [--json]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCapture } from '../src/capture/reader';
import type { CaptureSummary, PacketRecord } from '../src/capture/types';

interface Frame {
  sec: number;
  micro: number; // timestamp cut to the microsecond
  ps: number;
  caplen: number;
  wirelen: number;
  bytes: Buffer;
}

export interface TwinResult {
  name: string;
  cap: string;
  pcap?: string;
  capPackets: number;
  pcapPackets?: number;
  capFormat: string;
  locations: string[];
  identical: number; // frames equal in bytes, lengths and (µs) time
  firstDifference?: string;
  problems: string[];
  verdict: 'same' | 'different' | 'no twin' | 'unreadable';
}

async function frames(file: string): Promise<{ frames: Frame[]; summary: CaptureSummary }> {
  const list: Frame[] = [];
  const summary = await readCapture(file, {
    packet(r: PacketRecord) {
      list.push({
        sec: r.sec, micro: Math.floor(r.ps / 1e6), ps: r.ps, caplen: r.caplen, wirelen: r.wirelen,
        bytes: Buffer.from(r.buf.subarray(r.offset, r.offset + r.caplen)),
      });
    },
  });
  return { frames: list, summary };
}

function describeDifference(i: number, a: Frame, b: Frame): string | undefined {
  const what: string[] = [];
  if (a.sec !== b.sec || a.micro !== b.micro) what.push(`time ${a.sec}.${String(a.ps).padStart(12, '0')} vs ${b.sec}.${String(b.ps).padStart(12, '0')}`);
  if (a.caplen !== b.caplen) what.push(`caplen ${a.caplen} vs ${b.caplen}`);
  if (a.wirelen !== b.wirelen) what.push(`wire length ${a.wirelen} vs ${b.wirelen}`);
  if (!a.bytes.equals(b.bytes)) what.push('frame bytes differ');
  return what.length ? `packet ${i + 1}: ${what.join(', ')}` : undefined;
}

function twinOf(capFile: string): string | undefined {
  const base = capFile.replace(/\.cap(\.gz)?$/, '');
  return [`${base}.pcap`, `${base}.pcap.gz`].find((f) => fs.existsSync(f));
}

function findCaps(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findCaps(full));
    else if (/\.cap(\.gz)?$/.test(entry.name)) out.push(full);
  }
  return out.sort();
}

export async function compareTwins(folder: string): Promise<TwinResult[]> {
  const results: TwinResult[] = [];
  for (const cap of findCaps(folder)) {
    const pcap = twinOf(cap);
    const a = await frames(cap);
    const result: TwinResult = {
      name: path.relative(folder, cap),
      cap,
      pcap,
      capPackets: a.frames.length,
      capFormat: a.summary.format,
      locations: a.summary.interfaces.map((i) => i.name ?? String(i.id)),
      identical: 0,
      problems: a.summary.problems.map((p) => p.message),
      verdict: a.summary.format === 'dpmi' && !a.summary.incomplete ? 'no twin' : 'unreadable',
    };
    if (pcap) {
      const b = await frames(pcap);
      result.pcapPackets = b.frames.length;
      result.problems.push(...b.summary.problems.map((p) => p.message));
      const n = Math.min(a.frames.length, b.frames.length);
      for (let i = 0; i < n; i++) {
        const difference = describeDifference(i, a.frames[i], b.frames[i]);
        if (difference) result.firstDifference ??= difference;
        else result.identical++;
      }
      if (a.frames.length !== b.frames.length) result.firstDifference ??= `${a.frames.length} frames vs ${b.frames.length}`;
      result.verdict = result.identical === a.frames.length && a.frames.length === b.frames.length && result.problems.length === 0 ? 'same' : 'different';
    }
    results.push(result);
  }
  return results;
}

export function markdownTable(results: readonly TwinResult[]): string {
  const lines = ['| trace | .cap packets | .pcap packets | identical frames | locations | verdict |', '|---|---:|---:|---:|---|---|'];
  for (const r of results) {
    const note = r.firstDifference ?? r.problems[0];
    lines.push(`| ${r.name} | ${r.capPackets} | ${r.pcapPackets ?? '—'} | ${r.pcap ? r.identical : '—'} | ${r.locations.join(', ')} | ${r.verdict}${note ? ` (${note})` : ''} |`);
  }
  const twins = results.filter((r) => r.pcap);
  const same = twins.filter((r) => r.verdict === 'same').length;
  const alone = results.filter((r) => !r.pcap);
  const readFully = alone.filter((r) => r.verdict === 'no twin').length;
  lines.push('', `${same} of ${twins.length} twins identical (frames, lengths, timestamps to the µs); ${readFully} of ${alone.length} traces without twin read to the end.`);
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const folder = args.find((a) => !a.startsWith('--'));
  if (!folder) {
    process.stderr.write('usage: compare-cap-twins <folder> [--json]\n');
    process.exit(2);
  }
  const results = await compareTwins(folder);
  if (args.includes('--json')) process.stdout.write(JSON.stringify(results.map(({ cap: _c, pcap: _p, ...r }) => r), null, 2) + '\n');
  else process.stdout.write(markdownTable(results));
  if (results.some((r) => r.verdict === 'different' || r.verdict === 'unreadable')) process.exitCode = 1;
}

if (require.main === module) void main();
