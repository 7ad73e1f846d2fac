// Batch input of `report`: expands files, directories and globs; reads record files (analyze
// --json/--csv output) directly and analyses captures on a pool of worker threads, one capture
// per worker at a time. A bad input becomes an InputProblem, never a silent omission.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { MigrationRecord } from '../migration/record';
import type { AnalyzeReply } from './batch-worker';
import { recordsFromCsv, recordsFromJson } from './records-io';
import type { InputProblem } from './tables';

const CAPTURE_FILE = /\.(pcap|pcapng|cap|dump)(\.(gz|zst|xz|bz2))?$/i;
const RECORD_FILE = /\.(json|jsonl|ndjson|csv)$/i;

export interface ExpandedInputs {
  captures: string[];
  recordFiles: string[];
  problems: InputProblem[];
}

function walk(dir: string, found: string[]): void {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, found);
    else if ((entry.isFile() || entry.isSymbolicLink()) && CAPTURE_FILE.test(entry.name)) found.push(full);
  }
}

/** Glob segment → regex: `*` and `?` stay within one path segment, `[...]` is a class. */
function segmentRegex(segment: string): RegExp {
  let re = '';
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i];
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const close = segment.indexOf(']', i + 1);
      if (close < 0) re += '\\[';
      else {
        re += `[${segment.slice(i + 1, close).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const GLOB_CHARS = /[*?[]/;

/** Minimal glob (`*`, `?`, `[...]`, `**`): Node 20 has no fs.glob. Results sorted. */
export function expandGlob(pattern: string): string[] {
  const absolute = path.isAbsolute(pattern);
  const segments = pattern.split(/[\\/]+/).filter((s, i) => s !== '' || (i === 0 && absolute));
  const results: string[] = [];
  const visit = (base: string, rest: string[]): void => {
    if (rest.length === 0) {
      results.push(base);
      return;
    }
    const [head, ...tail] = rest;
    if (head === '**') {
      visit(base, tail); // zero directories
      for (const e of safeReaddir(base)) if (e.isDirectory()) visit(path.join(base, e.name), rest);
      return;
    }
    if (!GLOB_CHARS.test(head)) {
      const next = base === '' ? head : path.join(base, head);
      if (fs.existsSync(next === '' ? '/' : next)) visit(next, tail);
      return;
    }
    const re = segmentRegex(head);
    for (const e of safeReaddir(base))
      if (re.test(e.name) && !e.name.startsWith('.')) visit(base === '' ? e.name : path.join(base, e.name), tail);
  };
  if (absolute) visit('/', segments.slice(1));
  else visit('', segments);
  return [...new Set(results)].sort();
}

function safeReaddir(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir === '' ? '.' : dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  } catch {
    return [];
  }
}

/** Sort inputs: directories yield captures (record files must be named or globbed). */
export function expandInputs(args: readonly string[]): ExpandedInputs {
  const out: ExpandedInputs = { captures: [], recordFiles: [], problems: [] };
  const classify = (file: string): void => {
    if (RECORD_FILE.test(file)) out.recordFiles.push(file);
    else out.captures.push(file);
  };
  for (const arg of args) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(arg);
    } catch {
      stat = undefined;
    }
    if (stat?.isDirectory()) {
      const found: string[] = [];
      walk(arg, found);
      if (found.length === 0) out.problems.push({ file: arg, message: 'directory holds no capture files' });
      out.captures.push(...found);
    } else if (stat) classify(arg);
    else if (GLOB_CHARS.test(arg)) {
      const matches = expandGlob(arg).filter((f) => fs.statSync(f).isFile());
      if (matches.length === 0) out.problems.push({ file: arg, message: 'pattern matches no file' });
      matches.forEach(classify);
    } else out.problems.push({ file: arg, message: 'no such file or directory' });
  }
  out.captures = [...new Set(out.captures)];
  out.recordFiles = [...new Set(out.recordFiles)];
  return out;
}

export function readRecordFile(file: string): MigrationRecord[] {
  const text = fs.readFileSync(file, 'utf8');
  return /\.csv$/i.test(file) ? recordsFromCsv(text) : recordsFromJson(text);
}

export interface PoolProgress {
  done: number;
  total: number;
  failed: number;
  file: string;
}

export interface PoolOptions {
  jobs?: number; // default: one per core
  onProgress?: (p: PoolProgress) => void;
}

export function defaultJobs(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Analyse captures on `jobs` worker threads; replies come back in input order. */
export async function analyzeCaptures(files: readonly string[], options: PoolOptions = {}): Promise<AnalyzeReply[]> {
  const replies: AnalyzeReply[] = new Array(files.length);
  if (files.length === 0) return replies;
  const jobs = Math.max(1, Math.min(options.jobs ?? defaultJobs(), files.length));
  let next = 0;
  let done = 0;
  let failed = 0;
  const workerScript = path.join(__dirname, 'batch-worker.js');
  const runWorker = () =>
    new Promise<void>((resolve) => {
      const worker = new Worker(workerScript);
      let current = -1;
      const feed = (): void => {
        if (next >= files.length) {
          void worker.terminate().then(() => resolve());
          return;
        }
        current = next++;
        worker.postMessage({ file: files[current] });
      };
      worker.on('message', (reply: AnalyzeReply) => {
        replies[current] = reply;
        done++;
        if (reply.error) failed++;
        options.onProgress?.({ done, total: files.length, failed, file: reply.file });
        feed();
      });
      // A crashed worker (e.g. out of memory) loses only its current capture: record it and go on.
      worker.on('error', (err) => {
        if (current >= 0 && !replies[current]) {
          replies[current] = { file: files[current], records: [], problems: [], error: `worker crashed: ${err.message}` };
          done++;
          failed++;
          options.onProgress?.({ done, total: files.length, failed, file: files[current] });
        }
        void runWorker().then(resolve);
      });
      feed();
    });
  await Promise.all(Array.from({ length: jobs }, runWorker));
  return replies;
}

/** A one-line progress bar for a TTY stderr (callers only use it when stderr.isTTY). */
export function progressLine(p: PoolProgress, width = 30): string {
  const filled = Math.round((p.done / p.total) * width);
  const bad = p.failed ? `, ${p.failed} bad` : '';
  return `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${p.done}/${p.total} captures${bad} `;
}
