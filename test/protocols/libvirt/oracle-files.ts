// Readers for the independent oracle files beside the real captures: tshark's libvirt message
// list (NAME.tshark-libvirt.tsv), tshark's TCP conversation table (NAME.conv-tcp.txt), the
// ground-truth JSON. Tests locate marker packets from these, never from migscope's output.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { capturesDir, sharedCapturesDir } from '../../helpers/paths';

export interface TsharkMessage {
  frame: number;
  epoch: string;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  program: number;
  version: number;
  procedure: number;
  type: number;
  serial: number;
  status: number;
  length: number;
}

/** fixtures/captures/NAME.EXT, else ../shared/captures/NAME.EXT; undefined when neither exists. */
export function captureFile(name: string, ext: string): string | undefined {
  for (const dir of [capturesDir, sharedCapturesDir]) {
    const file = path.join(dir, `${name}.${ext}`);
    if (fs.existsSync(file)) return file;
  }
  return undefined;
}

/** One row per libvirt PDU (tshark puts several PDUs of one frame in one row, comma-separated). */
export function readTsharkLibvirt(file: string): TsharkMessage[] {
  const [header, ...lines] = fs.readFileSync(file, 'utf8').trim().split('\n');
  const cols = header.split('\t');
  const out: TsharkMessage[] = [];
  for (const line of lines) {
    const f = Object.fromEntries(line.split('\t').map((v, i) => [cols[i], v]));
    const multi = (k: string) => f[k].split(',');
    const procs = multi('libvirt.procedure');
    procs.forEach((_, i) => {
      out.push({
        frame: Number(f['frame.number']),
        epoch: f['frame.time_epoch'],
        src: f['ip.src'],
        srcPort: Number(f['tcp.srcport']),
        dst: f['ip.dst'],
        dstPort: Number(f['tcp.dstport']),
        program: Number.parseInt(multi('libvirt.program')[i], 16),
        version: Number(multi('libvirt.version')[i]),
        procedure: Number(procs[i]),
        type: Number(multi('libvirt.type')[i]),
        serial: Number(multi('libvirt.serial')[i]),
        status: Number(multi('libvirt.status')[i]),
        length: Number(multi('libvirt.length')[i]),
      });
    });
  }
  return out;
}

export interface TsharkConversation {
  a: string;
  b: string;
  relativeStart: number;
  duration: number;
}

export function readConvTcp(file: string): TsharkConversation[] {
  const out: TsharkConversation[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\S+:\d+)\s+<->\s+(\S+:\d+)\s+.*\s(\d+\.\d+)\s+(\d+\.\d+)\s*$/.exec(line);
    if (m) out.push({ a: m[1], b: m[2], relativeStart: Number(m[3]), duration: Number(m[4]) });
  }
  return out;
}

export interface GroundTruth {
  virsh_rc: number;
  virsh_output: string;
  start_wall_ns: number;
  end_wall_ns: number;
  virsh_wall_ms: number;
  events_src: string[];
  domjobinfo_completed_dst: Record<string, string>;
}

export function readGroundTruth(file: string): GroundTruth {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as GroundTruth;
}

/** start/end_wall_ns exactly (JSON numbers of 19 digits lose precision as doubles). */
export function wallClockNs(file: string, key: 'start_wall_ns' | 'end_wall_ns'): string {
  const m = new RegExp(`"${key}":\\s*(\\d+)`).exec(fs.readFileSync(file, 'utf8'));
  if (!m) throw new Error(`${file}: no ${key}`);
  return m[1];
}

/** A field of the source daemon's job-completed event, e.g. time_elapsed (ms). */
export function jobCompletedField(truth: GroundTruth, field: string): number | undefined {
  const event = truth.events_src.find((e) => e.includes("'job-completed'"));
  const m = event ? new RegExp(`\\b${field}: (\\d+)`).exec(event) : null;
  return m ? Number(m[1]) : undefined;
}
