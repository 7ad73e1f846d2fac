// Per-capture record cache (`report --cache DIR`): the analysis of a capture is stored under a
// key of its absolute path, size, modification time and the migscope version, so a re-run of a
// report over hundreds of GB only parses captures that are new or changed.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AnalyzeReply } from './batch-worker';

function migscopeVersion(): string {
  try {
    // package.json sits at the repository root, two levels above src/report (and above dist*/).
    for (const up of ['../..', '../../..']) {
      const file = path.resolve(__dirname, up, 'package.json');
      if (fs.existsSync(file)) return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: string }).version ?? '?';
    }
  } catch {
    // an unreadable package.json only means the cache cannot tell versions apart
  }
  return '?';
}

export class RecordCache {
  private readonly version = migscopeVersion();

  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
  }

  private entry(file: string): string | undefined {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      return undefined;
    }
    const key = createHash('sha256').update(JSON.stringify([path.resolve(file), stat.size, stat.mtimeMs, this.version])).digest('hex').slice(0, 32);
    return path.join(this.dir, `${key}.json`);
  }

  /** The cached analysis of `file`, if the file is unchanged since it was stored. */
  get(file: string): AnalyzeReply | undefined {
    const entry = this.entry(file);
    if (!entry || !fs.existsSync(entry)) return undefined;
    try {
      const reply = JSON.parse(fs.readFileSync(entry, 'utf8')) as AnalyzeReply;
      return { ...reply, file };
    } catch {
      return undefined; // a damaged entry is re-analysed and overwritten
    }
  }

  /** Store a successful analysis (failures are not cached: the next run tries again). */
  put(reply: AnalyzeReply): void {
    if (reply.error) return;
    const entry = this.entry(reply.file);
    if (entry) fs.writeFileSync(entry, JSON.stringify(reply));
  }
}
