// `npm run bench`: generates (once, cached under /tmp/migscope-bench/) a synthetic migration-like
// ns pcap of --gb GB, then times each case of the table below in its own child process: wall time
// (best of --repeat runs, warm cache) and peak RSS (GNU time). Prints MB/s, packets/s and ratios.
// Add a case: append to `cases` (command builder + optional skip reason).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateSyntheticCapture, type SyntheticCaptureInfo } from './bench/synthetic-capture';
import { convertToDpmiSync } from '../src/capture/dpmi-writer';
import { plainCapture, replayUnavailable } from '../src/capture/live-replay';

const GENERATOR_VERSION = 2; // bump when the synthetic capture changes
const cacheDir = '/tmp/migscope-bench';
const distRoot = path.resolve(__dirname, '..'); // dist/ (or dist-NAME/) of this build
const walkersJs = path.join(__dirname, 'bench', 'walkers.js');
const cliJs = path.join(distRoot, 'src', 'cli', 'main.js');

interface Options { gb: number; repeat: number; tsharkMb: number; only?: string[] }

function parseArgs(argv: string[]): Options {
  const options: Options = { gb: 1, repeat: 2, tsharkMb: 200 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i];
    if (flag === '--gb') options.gb = Number(value());
    else if (flag === '--repeat') options.repeat = Number(value());
    else if (flag === '--tshark-mb') options.tsharkMb = Number(value());
    else if (flag === '--only') options.only = value().split(',');
    else throw new Error(`unknown option ${argv[i]} (--gb N, --repeat N, --tshark-mb N, --only a,b)`);
  }
  return options;
}

interface BenchCase {
  readonly name: string;
  /** Which file it reads: the main synthetic capture, or the smaller one for slow tools. */
  readonly input: 'main' | 'small';
  /** argv, or a string saying why the case is skipped. */
  command(file: string): string[] | string;
  readonly timeoutSec?: number;
  readonly runs?: number; // overrides --repeat (slow tools run once)
  /** Its own input instead of the synthetic capture (e.g. a directory of many captures). */
  readonly ownInput?: () => { file: string; info: { bytes: number; packets?: number } };
}

/** `report` input: REPORT_COPIES symlinks to one real capture; bytes = decompressed total. */
const REPORT_COPIES = 100;
const reportFixture = path.resolve(distRoot, '..', 'fixtures', 'captures', 'a-p2p-src2dst.pcap.gz');
function reportInput(): { file: string; info: { bytes: number } } {
  const dir = path.join(cacheDir, `report-${REPORT_COPIES}`);
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 1; i <= REPORT_COPIES; i++) {
    const link = path.join(dir, `run-${String(i).padStart(3, '0')}.pcap.gz`);
    if (!fs.existsSync(link)) fs.symlinkSync(reportFixture, link);
  }
  return { file: dir, info: { bytes: REPORT_COPIES * require('node:zlib').gunzipSync(fs.readFileSync(reportFixture)).length } };
}
const reportCase = (jobs: number): BenchCase => ({
  name: `migscope report ${REPORT_COPIES} captures --jobs ${jobs}`,
  input: 'small',
  runs: 1,
  ownInput: reportInput,
  command: (dir) => (fs.existsSync(path.join(distRoot, 'src', 'cli', 'report.js')) ? [process.execPath, cliJs, 'report', dir, '--jobs', String(jobs), '--quiet', '--save-records', reportRecords] : 'no report command in this build'),
});
// The statistics + every output format (Vega charts included) from the records saved above.
const reportRecords = path.join(cacheDir, `report-${REPORT_COPIES}.records.json`);
const reportFromRecords: BenchCase = {
  name: `migscope report ${REPORT_COPIES} saved records --out`,
  input: 'small',
  runs: 1,
  ownInput: () => ({ file: reportRecords, info: { bytes: fs.existsSync(reportRecords) ? fs.statSync(reportRecords).size : 0 } }),
  command: (file) => (fs.existsSync(file) ? [process.execPath, cliJs, 'report', file, '--quiet', '--out', path.join(cacheDir, 'report-out')] : 'run a report capture case first (it saves the records)'),
};

/** `live`: a real capture replayed LOOPS times at top speed into a veth in a private namespace,
 *  captured by `migscope live` (root only; src/capture/LIVE.md). Its stdout line also gives the
 *  replay rate and the kernel drops. */
function liveCase(loops: number): BenchCase {
  const fixture = path.resolve(distRoot, '..', 'fixtures', 'captures', 'a-p2p-src2dst.pcap.gz');
  return {
    name: `migscope live, veth replay x${loops} (root)`,
    input: 'small',
    runs: 1,
    ownInput: () => ({ file: fixture, info: { bytes: loops * fs.statSync(plainCapture(fixture)).size } }),
    command: (f) => replayUnavailable() ?? [process.execPath, path.join(distRoot, 'src', 'capture', 'live-replay.js'), f, '--loops', String(loops)],
  };
}

/** The main synthetic pcap as a DPMI trace (same frames; 36- instead of 16-byte record headers). */
function dpmiInput(): { file: string; info: { bytes: number; packets: number } } {
  const source = syntheticFile(parseArgs(process.argv.slice(2)).gb).file;
  const file = source.replace(/\.pcap$/, '.cap');
  const infoFile = `${file}.json`;
  if (!fs.existsSync(file) || !fs.existsSync(infoFile)) fs.writeFileSync(infoFile, JSON.stringify(convertToDpmiSync(source, file, { comment: 'migscope bench' })));
  return { file, info: JSON.parse(fs.readFileSync(infoFile, 'utf8')) };
}

const hasCommand = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;

const cases: BenchCase[] = [
  { name: 'raw read (floor)', input: 'main', command: (f) => [process.execPath, walkersJs, 'raw', f] },
  { name: 'bare pcap walk', input: 'main', command: (f) => [process.execPath, walkersJs, 'bare', f] },
  { name: 'bare sync walk (4 MiB readSync)', input: 'main', command: (f) => [process.execPath, walkersJs, 'bare-sync', f] },
  { name: 'migscope reader', input: 'main', command: (f) => [process.execPath, walkersJs, 'reader', f] },
  { name: 'migscope reader, same frames as DPMI trace', input: 'main', ownInput: dpmiInput, command: (f) => [process.execPath, walkersJs, 'reader', f] },
  { name: 'pcap-parser 0.2.1', input: 'main', command: (f) => [process.execPath, walkersJs, 'pcap-parser', f] },
  {
    name: 'migscope flows',
    input: 'main',
    command: (f) => (fs.existsSync(path.join(distRoot, 'src', 'cli', 'flows.js')) ? [process.execPath, cliJs, 'flows', f, '--json'] : 'no flows command in this build'),
  },
  {
    name: 'migscope analyze',
    input: 'main',
    command: (f) => (fs.existsSync(path.join(distRoot, 'src', 'cli', 'analyze.js')) ? [process.execPath, cliJs, 'analyze', f, '--json'] : 'no analyze command in this build'),
  },
  {
    name: 'tshark -z conv,tcp',
    input: 'small',
    runs: 1,
    timeoutSec: 600,
    command: (f) => (hasCommand('tshark') ? ['tshark', '-q', '-n', '-z', 'conv,tcp', '-r', f] : 'tshark not installed'),
  },
  reportCase(1),
  reportCase(2),
  reportFromRecords,
  liveCase(20),
];

interface Result { name: string; file: string; bytes: number; packets?: number; seconds?: number; cpuSeconds?: number; rssKiB?: number; skipped?: string }

function syntheticFile(gb: number): { file: string; info: SyntheticCaptureInfo } {
  fs.mkdirSync(cacheDir, { recursive: true });
  const file = path.join(cacheDir, `synthetic-v${GENERATOR_VERSION}-${gb}GB.pcap`);
  const infoFile = `${file}.json`;
  if (fs.existsSync(file) && fs.existsSync(infoFile)) return { file, info: JSON.parse(fs.readFileSync(infoFile, 'utf8')) };
  process.stderr.write(`generating ${file} ...\n`);
  const started = Date.now();
  const info = generateSyntheticCapture(file, { bytes: Math.round(gb * 1e9) });
  fs.writeFileSync(infoFile, JSON.stringify(info));
  process.stderr.write(`  ${info.packets} packets, ${(info.bytes / 1e6).toFixed(0)} MB in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return { file, info };
}

function runOnce(argv: string[], timeoutSec: number | undefined): { seconds: number; cpuSeconds: number; rssKiB: number; stdout: string; error?: string } {
  const timeFile = path.join(os.tmpdir(), `migscope-bench-time-${process.pid}`);
  const wrapped = timeoutSec ? ['timeout', String(timeoutSec), ...argv] : argv;
  const started = process.hrtime.bigint();
  // CPU seconds (user + system) as well as wall time: on a shared, loaded box they vary far less.
  const child = spawnSync('/usr/bin/time', ['-f', '%M %U %S', '-o', timeFile, ...wrapped], {
    stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const [rssKiB, user, system] = (fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '').split(' ').map(Number);
  fs.rmSync(timeFile, { force: true });
  const error = child.status === 0 ? undefined : `exit ${child.status}${child.status === 124 ? ' (timeout)' : ''}: ${child.stderr.toString().trim().split('\n').slice(-2).join(' ')}`;
  return { seconds, cpuSeconds: user + system, rssKiB, stdout: child.stdout.toString(), error };
}

function main(): void {
  const options = parseArgs(process.argv.slice(2));
  const main = syntheticFile(options.gb);
  const small = syntheticFile(Math.min(options.gb, options.tsharkMb / 1000));
  const results: Result[] = [];
  for (const benchCase of cases) {
    if (options.only && !options.only.some((o) => benchCase.name.includes(o))) continue;
    const input = benchCase.ownInput?.() ?? (benchCase.input === 'main' ? main : small);
    const argv = benchCase.command(input.file);
    const base = { name: benchCase.name, file: path.basename(input.file), bytes: input.info.bytes };
    if (typeof argv === 'string') {
      results.push({ ...base, skipped: argv });
      continue;
    }
    let best: Result | undefined;
    for (let run = 0; run < (benchCase.runs ?? options.repeat); run++) {
      const outcome = runOnce(argv, benchCase.timeoutSec);
      if (outcome.error) { best = { ...base, skipped: outcome.error }; break; }
      let packets = input.info.packets;
      const line = outcome.stdout.split('\n').find((l) => l.startsWith('{"packets"'));
      if (line) packets = JSON.parse(line).packets;
      if (!best || (best.seconds ?? Infinity) > outcome.seconds) best = { ...base, packets, seconds: outcome.seconds, cpuSeconds: outcome.cpuSeconds, rssKiB: outcome.rssKiB };
    }
    if (best) results.push(best);
    process.stderr.write(`  done: ${benchCase.name}\n`);
  }
  print(results, options);
  const out = path.join(cacheDir, `results-${options.gb}GB.json`);
  fs.writeFileSync(out, JSON.stringify({ when: new Date().toISOString(), node: process.version, cpus: os.cpus().length, loadavg: os.loadavg(), results }, null, 2));
  process.stderr.write(`results: ${out}\n`);
}

function print(results: Result[], options: Options): void {
  const rate = (r: Result | undefined) => (r?.seconds ? r.bytes / r.seconds : undefined);
  const find = (prefix: string) => results.find((r) => r.name.startsWith(prefix) && r.seconds);
  const raw = rate(find('raw'));
  const bare = rate(find('bare'));
  const tshark = rate(find('tshark'));
  const cpuRate = (r: Result | undefined) => (r?.cpuSeconds ? r.bytes / r.cpuSeconds : undefined);
  const [rawCpu, bareCpu, tsharkCpu] = [cpuRate(find('raw')), cpuRate(find('bare')), cpuRate(find('tshark'))];
  const ratio = (a: number | undefined, b: number | undefined) => (a && b ? `${(a / b).toFixed(2)}×` : '—');
  const rows = [['case', 'file', 'MB', 's', 'MB/s', 'Mpkt/s', 'peak RSS MB', 'vs raw', 'vs bare walk', 'vs tshark', 'cpu s', 'MB/cpu-s', 'cpu: vs raw', 'vs bare', 'vs tshark']];
  for (const r of results) {
    if (!r.seconds) {
      rows.push([r.name, r.file, (r.bytes / 1e6).toFixed(0), '—', `skipped: ${r.skipped}`, '', '', '', '', '', '', '', '', '', '']);
      continue;
    }
    const mbps = rate(r)!;
    rows.push([
      r.name, r.file, (r.bytes / 1e6).toFixed(0), r.seconds.toFixed(2), (mbps / 1e6).toFixed(0),
      r.packets ? (r.packets / r.seconds / 1e6).toFixed(2) : '—', ((r.rssKiB ?? 0) / 1024).toFixed(0),
      ratio(mbps, raw), ratio(mbps, bare), ratio(mbps, tshark),
      r.cpuSeconds?.toFixed(2) ?? '—', r.cpuSeconds ? (cpuRate(r)! / 1e6).toFixed(0) : '—',
      ratio(cpuRate(r), rawCpu), ratio(cpuRate(r), bareCpu), ratio(cpuRate(r), tsharkCpu),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  process.stdout.write(`migscope bench: ${options.gb} GB synthetic ns pcap (1514-byte frames), best of ${options.repeat}, warm cache, ` +
    `node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
  for (const row of rows) process.stdout.write(`${line(row)}\n`);
}

main();
