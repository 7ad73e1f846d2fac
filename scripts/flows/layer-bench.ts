// What each layer of `migscope flows` costs, in CPU time (robust on a shared, loaded machine):
//   node dist/scripts/flows/layer-bench.js [capture]   (default: the bench's 1 GB synthetic pcap)
// 1. in-process over a capture: reader → no-op sink / + decoder / + whole Pipeline (best of 3);
// 2. a loop over one synthetic 1514-byte Ethernet/IPv4/TCP frame (no I/O): decoder, + flow table.
import * as fs from 'node:fs';
import { readCapture } from '../../src/capture/reader';
import type { PacketRecord, PacketSink } from '../../src/capture/types';
import { PacketDecoder } from '../../src/decode/decoder';
import { FlowTable } from '../../src/flow/flow-table';
import { Pipeline } from '../../src/flow/pipeline';

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

async function overCapture(file: string): Promise<void> {
  const best: Record<string, number> = {};
  let bytes = 0;
  let packets = 0;
  for (let round = 0; round < 3; round++) {
    for (const mode of ['reader only', '+ decode', '+ flows (Pipeline)']) {
      let sink: PacketSink & { finish?(): unknown };
      if (mode === 'reader only') sink = { packet: () => {} };
      else if (mode === '+ decode') {
        const decoder = new PacketDecoder();
        sink = { packet: (r) => { decoder.decode(r); } };
      } else sink = new Pipeline(file);
      const started = process.cpuUsage();
      const summary = await readCapture(file, sink);
      sink.finish?.();
      best[mode] = Math.min(best[mode] ?? Infinity, cpuSeconds(started));
      bytes = summary.bytesRead;
      packets = summary.packets;
    }
  }
  console.log(`${file}: ${(bytes / 1e6).toFixed(0)} MB, ${packets} packets (CPU seconds, best of 3)`);
  for (const [mode, seconds] of Object.entries(best)) {
    console.log(`  ${mode.padEnd(20)} ${seconds.toFixed(3)} s  ${(bytes / 1e6 / seconds).toFixed(0).padStart(5)} MB/cpu-s  ${((seconds * 1e9) / packets).toFixed(0).padStart(5)} ns/packet`);
  }
}

function syntheticLoop(): void {
  const frame = new Uint8Array(1514);
  frame.set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00, 0x45, 0, 0x05, 0xdc, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  frame.set([0xc0, 0x00, 0xc0, 0x00, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0x01, 0x00, 0, 0, 0, 0], 34);
  const record: PacketRecord = { buf: frame, offset: 0, caplen: 1514, wirelen: 1514, sec: 1, ps: 0, interfaceId: 0, linkType: 1, index: 0, fileOffset: 0 };
  const n = 3e6;
  for (const mode of ['decode', 'decode + flow table']) {
    const decoder = new PacketDecoder();
    const table = new FlowTable([]);
    let seq = 1;
    let best = Infinity;
    for (let round = 0; round < 5; round++) {
      const started = process.cpuUsage();
      for (let i = 0; i < n; i++) {
        record.index++;
        frame[38] = seq >>> 24; frame[39] = (seq >>> 16) & 255; frame[40] = (seq >>> 8) & 255; frame[41] = seq & 255;
        const p = decoder.decode(record);
        if (mode !== 'decode') table.packet(p);
        seq = (seq + 1460) >>> 0; // wraps: the reassembly's sequence arithmetic is exercised too
      }
      best = Math.min(best, cpuSeconds(started));
    }
    console.log(`synthetic frame loop, ${mode.padEnd(20)} ${((best * 1e9) / n).toFixed(0).padStart(4)} ns/packet (${(n / best / 1e6).toFixed(1)} M packets/s)`);
  }
}

async function main(): Promise<void> {
  const file = process.argv[2] ?? '/tmp/migscope-bench/synthetic-v1-1GB.pcap';
  if (fs.existsSync(file)) await overCapture(file);
  else console.log(`${file} not found (run npm run bench once to generate it)`);
  syntheticLoop();
}

void main();
