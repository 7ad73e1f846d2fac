// Slims a lab capture for committing as a fixture: packets of the native migration-data
// connection (QEMU's port range 49152–49215) keep their headers and a few payload bytes, as a
// short snaplen would leave them (caplen < wirelen), so packet counts, byte counts and timing
// stay exact. libvirt RPC (16509, incl. tunnelled streams), ICMP, ARP and the rest stay whole.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { ipv4Info, readPcap } from './pcap-records';

export const migrationPortMin = 49152;
export const migrationPortMax = 49215;

export const isMigrationDataPort = (port: number): boolean => port >= migrationPortMin && port <= migrationPortMax;

export interface SlimStats {
  packets: number;
  slimmed: number;
  bytesIn: number;
  bytesOut: number;
}

export async function slimCapture(input: string, output: string, opts: { keepPayload: number }): Promise<SlimStats> {
  const out = fs.createWriteStream(output);
  const gzip = output.endsWith('.gz') ? zlib.createGzip({ level: 9 }) : undefined;
  gzip?.pipe(out);
  const sink: NodeJS.WritableStream = gzip ?? out;
  const stats: SlimStats = { packets: 0, slimmed: 0, bytesIn: 0, bytesOut: 0 };
  const parts: Buffer[] = [];
  let partBytes = 0;
  const flush = async () => {
    if (!parts.length) return;
    const buf = Buffer.concat(parts);
    parts.length = 0;
    partBytes = 0;
    if (!sink.write(buf)) await new Promise((r) => sink.once('drain', r));
  };
  let pendingFlush: Promise<void> = Promise.resolve();
  await readPcap(
    input,
    (h) => {
      parts.push(h.raw);
      stats.bytesOut += 24;
    },
    (r, h) => {
      stats.packets++;
      stats.bytesIn += 16 + r.caplen;
      let caplen = r.caplen;
      const info = ipv4Info(r.data);
      if (info && info.proto === 6 && (isMigrationDataPort(info.sport) || isMigrationDataPort(info.dport))) {
        const cut = Math.min(r.caplen, info.payloadOffset + opts.keepPayload);
        if (cut < r.caplen) {
          caplen = cut;
          stats.slimmed++;
        }
      }
      const rec = Buffer.alloc(16 + caplen);
      const w = (v: number, o: number) => (h.littleEndian ? rec.writeUInt32LE(v, o) : rec.writeUInt32BE(v, o));
      w(r.sec, 0);
      w(r.frac, 4);
      w(caplen, 8);
      w(r.wirelen, 12);
      r.data.copy(rec, 16, 0, caplen);
      parts.push(rec);
      partBytes += rec.length;
      stats.bytesOut += rec.length;
      if (partBytes > 1 << 20) pendingFlush = pendingFlush.then(flush);
    },
  );
  await pendingFlush;
  await flush();
  await new Promise<void>((resolve, reject) => {
    out.once('finish', resolve);
    out.once('error', reject);
    sink.end();
  });
  return stats;
}
