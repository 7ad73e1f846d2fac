// The benchmark's child processes: `node walkers.js <walker> <file>` reads the file one way and
// prints one JSON line {packets, bytes, maxRssKiB}. Each runs in its own process so that wall time
// and peak RSS are its own.
import * as fs from 'node:fs';
import { Transform } from 'node:stream';
import { readCapture } from '../../src/capture/reader';

type Walker = (file: string) => Promise<{ packets: number; bytes: number }>;

export const walkers: Record<string, Walker> = {
  /** The floor: sequential readSync into one reused 4 MiB buffer, no parsing. */
  async raw(file) {
    const fd = fs.openSync(file, 'r');
    const buffer = Buffer.allocUnsafe(4 * 1024 * 1024);
    let bytes = 0;
    for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0;) bytes += n;
    fs.closeSync(fd);
    return { packets: 0, bytes };
  },

  /** The design card's ~15-line streaming pcap walk (1 MiB chunks, a subarray per packet). */
  async bare(file) {
    let packets = 0, bytes = 0, header = false;
    let carry: Buffer = Buffer.alloc(0);
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) {
      const buf: Buffer = carry.length ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
      let pos = header ? 0 : 24;
      header = true;
      while (pos + 16 <= buf.length) {
        const caplen = buf.readUInt32LE(pos + 8);
        if (pos + 16 + caplen > buf.length) break;
        const frame = buf.subarray(pos + 16, pos + 16 + caplen);
        packets++; bytes += frame.length; pos += 16 + caplen;
      }
      carry = buf.subarray(pos);
    }
    return { packets, bytes };
  },

  /** The tightest walk we can write: readSync into a reused 4 MiB buffer, no subarray, the tail
   *  moved to the front (the reader's I/O pattern without its checks, timestamps or sink). */
  async 'bare-sync'(file) {
    const fd = fs.openSync(file, 'r');
    const buf = Buffer.allocUnsafe(4 * 1024 * 1024 + 262144);
    let packets = 0, bytes = 0, have = 0, pos = 24;
    for (let n; (n = fs.readSync(fd, buf, have, 4 * 1024 * 1024, null)) > 0;) {
      have += n;
      while (pos + 16 <= have) {
        const caplen = buf.readUInt32LE(pos + 8);
        if (pos + 16 + caplen > have) break;
        packets++; bytes += caplen; pos += 16 + caplen;
      }
      buf.copy(buf, 0, pos, have);
      have -= pos; pos = 0;
    }
    fs.closeSync(fd);
    return { packets, bytes };
  },

  /** migscope's reader alone, with a sink that only counts. */
  async reader(file) {
    let packets = 0, bytes = 0;
    const summary = await readCapture(file, { packet(r) { packets++; bytes += r.caplen; } });
    if (summary.problems.length > 0) throw new Error(summary.problems.map((p) => p.message).join('; '));
    return { packets, bytes };
  },

  /** pcap-parser 0.2.1. It rejects the nanosecond magic, so the stream's first 4 bytes are patched
   *  to the µs magic (timestamps then mean nothing, the parsing work is the same). */
  async 'pcap-parser'(file) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const pcapParser = require('pcap-parser') as { parse(input: NodeJS.ReadableStream): NodeJS.EventEmitter };
    let first = true;
    const patch = new Transform({
      transform(chunk: Buffer, _enc, done) {
        if (first) { first = false; chunk.writeUInt32LE(0xa1b2c3d4, 0); }
        done(null, chunk);
      },
    });
    const input = fs.createReadStream(file).pipe(patch);
    return new Promise((resolve, reject) => {
      let packets = 0, bytes = 0;
      const parser = pcapParser.parse(input);
      parser.on('packet', (p: { data: Buffer }) => { packets++; bytes += p.data.length; });
      parser.on('end', () => resolve({ packets, bytes }));
      parser.on('error', reject);
    });
  },
};

if (require.main === module) {
  const [name, file] = process.argv.slice(2);
  const walker = walkers[name];
  if (!walker || !file) {
    process.stderr.write(`usage: walkers.js <${Object.keys(walkers).join('|')}> <file>\n`);
    process.exit(1);
  }
  walker(file).then(
    (result) => process.stdout.write(`${JSON.stringify({ ...result, maxRssKiB: process.resourceUsage().maxRSS })}\n`),
    (err: unknown) => { process.stderr.write(`${String(err)}\n`); process.exit(2); },
  );
}
