// Replays a capture into a veth pair inside a private network namespace and runs `migscope live`
// on the other end: the harness of the root-only live tests and of the live case of
// `npm run bench` (run directly: node dist/src/capture/live-replay.js [capture] [--loops N] [--mbps M]).
// Nothing leaves the namespace: the veth ends have no addresses and no route out.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

const TOOLS = ['ip', 'tcpdump', 'tcpreplay', 'ethtool'];

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** Why the replay harness cannot run here (not root, a tool missing), or undefined when it can. */
export function replayUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, veth, packet capture)';
  const missing = TOOLS.filter((t) => !onPath(t));
  if (missing.length > 0) return `needs ${missing.join(', ')} (Debian: apt-get install iproute2 tcpdump tcpreplay ethtool)`;
  return undefined;
}

function run(argv: string[]): string {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout;
}

let namespaceCount = 0;

/** A private namespace with one veth pair: frames sent on `txIf` arrive on `rxIf`. */
export class VethNamespace {
  readonly name: string;
  readonly txIf: string;
  readonly rxIf: string;

  constructor() {
    const id = `${process.pid % 100000}x${++namespaceCount}`;
    this.name = `migscope-live-${id}`;
    this.txIf = `mlt${id}`.slice(0, 15);
    this.rxIf = `mlr${id}`.slice(0, 15);
    run(['ip', 'netns', 'add', this.name]);
    try {
      const exec = (...argv: string[]) => run(['ip', 'netns', 'exec', this.name, ...argv]);
      // No IPv6 on the pair: no router solicitations etc. of our own among the replayed frames.
      exec('sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
      run(['ip', '-n', this.name, 'link', 'add', this.txIf, 'type', 'veth', 'peer', 'name', this.rxIf]);
      for (const dev of [this.txIf, this.rxIf]) {
        run(['ip', '-n', this.name, 'link', 'set', dev, 'up']);
        // Wire-sized frames, as on the lab's mirror port (offloads would merge segments).
        exec('ethtool', '-K', dev, 'tso', 'off', 'gso', 'off', 'gro', 'off');
      }
    } catch (err) {
      this.remove();
      throw err;
    }
  }

  /** argv that runs a command inside the namespace. */
  exec(argv: string[]): string[] {
    return ['ip', 'netns', 'exec', this.name, ...argv];
  }

  remove(): void {
    spawnSync('ip', ['netns', 'delete', this.name], { stdio: 'ignore' });
  }
}

export interface ReplayResult {
  packets: number;
  bytes: number;
  seconds: number;
  pps: number;
  mbps: number;
}

/** Parses tcpreplay's "Actual: N packets (B bytes) sent in S seconds". */
export function parseTcpreplayOutput(text: string): ReplayResult | undefined {
  const m = /Actual: (\d+) packets \((\d+) bytes\) sent in ([\d.]+) seconds/.exec(text);
  if (!m) return undefined;
  const [packets, bytes, seconds] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return { packets, bytes, seconds, pps: seconds > 0 ? packets / seconds : 0, mbps: seconds > 0 ? (bytes * 8) / seconds / 1e6 : 0 };
}

/** tcpreplay reads plain pcap only: inflate a .gz once into the temp directory. */
export function plainCapture(file: string): string {
  if (!file.endsWith('.gz')) return file;
  const out = path.join(os.tmpdir(), `migscope-replay-${path.basename(file, '.gz')}`);
  const stat = fs.statSync(file);
  if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < stat.mtimeMs) {
    const tmp = `${out}.${process.pid}`;
    fs.writeFileSync(tmp, zlib.gunzipSync(fs.readFileSync(file)));
    fs.renameSync(tmp, out);
  }
  return out;
}

export interface ReplayOptions {
  /** tcpreplay speed: 'topspeed', or megabits per second. */
  speed?: 'topspeed' | number;
  loops?: number;
}

/** Sends `file` out of the namespace's tx end (synchronously; the capture runs in another process). */
export function replay(ns: VethNamespace, file: string, options: ReplayOptions = {}): ReplayResult {
  const speed = options.speed ?? 'topspeed';
  const argv = ns.exec(['tcpreplay', '-i', ns.txIf, speed === 'topspeed' ? '--topspeed' : `--mbps=${speed}`, `--loop=${options.loops ?? 1}`, plainCapture(file)]);
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  const parsed = parseTcpreplayOutput(r.stdout + r.stderr);
  if (r.status !== 0 || !parsed) throw new Error(`tcpreplay failed: ${(r.stderr || r.stdout).trim()}`);
  return parsed;
}

/** A `migscope live` child inside the namespace, its output gathered. */
export class LiveProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  /** `migscope live -i iface …args` inside network namespace `namespace` (e.g. a VethNamespace's
   *  name and rxIf, or the lab's switch namespace and mon0). */
  constructor(namespace: string, iface: string, cliPath: string, args: string[]) {
    const argv = ['ip', 'netns', 'exec', namespace, process.execPath, cliPath, 'live', '-i', iface, ...args];
    this.child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (t: string) => (this.stdout += t));
    this.child.stderr!.setEncoding('utf8').on('data', (t: string) => (this.stderr += t));
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
  }

  /** Resolves when `test(stdout, stderr)` holds; rejects after `timeoutMs` or if the process ends. */
  async waitFor(test: (stdout: string, stderr: string) => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!test(this.stdout, this.stderr)) {
      if (this.child.exitCode !== null) throw new Error(`migscope live ended (exit ${this.child.exitCode}): ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms; stderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGINT (as Ctrl-C would), then the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGINT');
    return this.exited;
  }

  /** Peak resident memory of the migscope process so far (VmHWM), MiB. */
  peakRssMiB(): number | undefined {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${this.child.pid}/status`, 'utf8'));
      return m ? Math.round(Number(m[1]) / 1024) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The --json lines printed so far. */
  jsonLines(): Record<string, any>[] {
    return this.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  }
}

/** The bench case: replay `file` `loops` times (top speed or --mbps) into `migscope live`; one JSON line. */
async function benchMain(argv: string[]): Promise<void> {
  const unavailable = replayUnavailable();
  if (unavailable) {
    process.stderr.write(`live rate: skipped: ${unavailable}\n`);
    process.exit(2);
  }
  const valueOf = (flag: string) => (argv.includes(flag) ? Number(argv[argv.indexOf(flag) + 1]) : undefined);
  const loops = valueOf('--loops') ?? 10;
  const mbps = valueOf('--mbps'); // default: top speed
  const file = argv.find((a, i) => !a.startsWith('--') && !['--loops', '--mbps'].includes(argv[i - 1])) ?? path.resolve(__dirname, '..', '..', '..', 'fixtures', 'captures', 'a-p2p-src2dst.pcap.gz');
  const cli = path.resolve(__dirname, '..', 'cli', 'main.js');
  const ns = new VethNamespace();
  try {
    const live = new LiveProcess(ns.name, ns.rxIf, cli, ['--json', '--stats-interval', '0.2']);
    await live.waitFor((_, err) => err.includes('listening on'), 20_000);
    const sent = replay(ns, file, { speed: mbps ?? 'topspeed', loops });
    const replayEnd = Date.now();
    // Stop only once every packet has reached the analyzer (tcpdump drops what is unread at exit).
    const analysed = () => Math.max(0, ...live.jsonLines().filter((l) => l.type === 'counters').map((l) => l.analysedPackets + l.droppedByKernel));
    await live.waitFor(() => analysed() >= sent.packets, 600_000);
    const drainSeconds = (Date.now() - replayEnd) / 1000;
    const peakRssMiB = live.peakRssMiB();
    await live.stop();
    const summary = live.jsonLines().find((l) => l.type === 'summary');
    const line = {
      packets: summary?.packets,
      sentPackets: sent.packets,
      replayPps: Math.round(sent.pps),
      replayMbps: Math.round(sent.mbps),
      analysedPps: Math.round(sent.packets / (sent.seconds + drainSeconds)),
      drainSeconds,
      kernelDrops: summary?.kernelDrops,
      migrations: summary?.migrations,
      peakRssMiB, // of the migscope live process (tcpdump's ring buffer not included)
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
    process.stderr.write(
      `live rate: ${sent.packets} packets replayed at ${line.replayPps} packets/s (${line.replayMbps} Mbit/s); ` +
        `migscope live analysed ${line.packets} (${line.analysedPps} packets/s incl. ${drainSeconds.toFixed(1)} s drain), kernel drops ${line.kernelDrops}, ${line.migrations} migration(s), peak RSS ${peakRssMiB} MiB\n`,
    );
  } finally {
    ns.remove();
  }
}

if (require.main === module) {
  benchMain(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`live rate: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
