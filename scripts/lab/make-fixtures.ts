// Copies lab runs into a fixture directory at committable size: captures slimmed (see
// slim-capture.ts) and gzipped, except the runs named as full (gzip -9 only); each JSON copy
// records how its capture was reduced. Manifests are copied as they are.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { migrationPortMax, migrationPortMin, slimCapture } from './slim-capture';

export async function makeFixtures(from: string, to: string, full: Set<string>, keepPayload = 4): Promise<string[]> {
  const written: string[] = [];
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    if (entry.isDirectory()) {
      written.push(...(await makeFixtures(src, path.join(to, entry.name), full, keepPayload)));
      continue;
    }
    fs.mkdirSync(to, { recursive: true });
    if (entry.name === 'manifest.csv') {
      // Captures are committed gzipped: point the manifest at the .gz files.
      fs.writeFileSync(path.join(to, entry.name), fs.readFileSync(src, 'utf8').replace(/\.pcap,/g, '.pcap.gz,'));
      written.push(path.join(to, entry.name));
      continue;
    }
    if (!entry.name.endsWith('.json')) continue;
    const truth = JSON.parse(fs.readFileSync(src, 'utf8'));
    if (truth.schema !== 'migscope-lab-run/1') continue;
    const name: string = truth.name;
    const pcapIn = path.join(from, truth.capture);
    const pcapOut = path.join(to, `${truth.capture}.gz`);
    if (full.has(name)) {
      await pipeline(fs.createReadStream(pcapIn), zlib.createGzip({ level: 9 }), fs.createWriteStream(pcapOut));
      truth.capture_reduction = null;
    } else {
      const s = await slimCapture(pcapIn, pcapOut, { keepPayload });
      truth.capture_reduction = {
        tool: 'scripts/lab/slim-capture.ts',
        migration_data_ports: [migrationPortMin, migrationPortMax],
        payload_bytes_kept: keepPayload,
        packets: s.packets,
        packets_cut: s.slimmed,
      };
    }
    truth.files.pcap = path.basename(pcapOut);
    written.push(pcapOut);
    for (const f of Object.values(truth.files as Record<string, string>)) {
      if (f.endsWith('.pcap') || f.endsWith('.pcap.gz')) continue;
      fs.copyFileSync(path.join(from, f), path.join(to, f));
      written.push(path.join(to, f));
    }
    fs.writeFileSync(path.join(to, entry.name), `${JSON.stringify(truth, null, 1)}\n`);
    written.push(path.join(to, entry.name));
  }
  return written;
}
