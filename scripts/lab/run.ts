// One real migration in the lab: boot a fresh guest, start the capture on the switch's mirror
// port, the 1 ms pinger and both daemons' event monitors, run virsh, stop everything, then
// write the capture, the ground-truth JSON and the tshark oracle files beside it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  extractPhaseLines,
  jobFiguresFromDomjobinfo,
  jobFiguresFromEvent,
  parseDomjobinfo,
  parsePingLog,
  parseVirshEvents,
} from './ground-truth';

export const labScript = path.resolve(__dirname, '..', '..', '..', 'scripts', 'lab', 'lab.sh');
export const labDir = process.env.MIGSCOPE_LAB_DIR ?? '/var/lib/migscope-lab';

export const modes = ['p2p', 'back', 'managed', 'tunnelled', 'offline', 'postcopy', 'fail', 'cancel'] as const;
export type Mode = (typeof modes)[number];

export interface RunOptions {
  mode: Mode;
  ramMiB: number;
  loadPct: number;
  outDir: string;
  name: string;
  accel: 'qemu' | 'kvm';
  bandwidthMiBs?: number; // virsh migrate --bandwidth
  timeoutS?: number; // virsh migrate --timeout (suspends the guest to force completion)
  settleS: number; // capture time before and after the virsh command
}

export interface RunResult {
  name: string;
  ok: boolean; // virsh said the migration did what the mode expects
  virshRc: number;
  wallMs: number;
  files: string[];
}

const ADDR = { src: '10.77.0.1', dst: '10.77.0.2', cli: '10.77.0.3', vm: '10.77.0.10' };
const NS = { sw: 'mlab-sw', src: 'mlab-src', dst: 'mlab-dst', cli: 'mlab-cli' };

function lab(args: string[], allowFail = false): string {
  const r = spawnSync(labScript, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0 && !allowFail) throw new Error(`lab.sh ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout + (allowFail ? r.stderr : '');
}

/** Wall clock in ns with sub-ms resolution: Date anchors, hrtime measures. */
const anchorWallNs = BigInt(Date.now()) * 1_000_000n;
const anchorHr = process.hrtime.bigint();
const wallNs = (): bigint => anchorWallNs + (process.hrtime.bigint() - anchorHr);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Capture, pinger and event monitors of the current run, killed if the run throws. */
const running = new Set<ChildProcess>();

function startProcess(cmd: string, args: string[], outFile: string, errFile?: string): ChildProcess {
  const out = fs.openSync(outFile, 'w');
  const err = errFile ? fs.openSync(errFile, 'w') : 'ignore';
  const child = spawn(cmd, args, { stdio: ['ignore', out, err] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  fs.closeSync(out);
  if (typeof err === 'number') fs.closeSync(err);
  return child;
}

function stopProcess(child: ChildProcess, signal: NodeJS.Signals, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

async function waitForText(file: string, text: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes(text)) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for "${text}" in ${file}`);
}

function versions(): Record<string, string> {
  const first = (cmd: string, args: string[]) => (spawnSync(cmd, args, { encoding: 'utf8' }).stdout || '').split('\n')[0].trim();
  return {
    libvirtd: first('libvirtd', ['--version']),
    qemu: first('qemu-system-x86_64', ['--version']),
    tshark: first('tshark', ['--version']),
    tcpdump: first('tcpdump', ['--version']),
    host_kernel: first('uname', ['-r']),
    guest_kernel: `${fs.readFileSync(path.join(labDir, 'guest', 'kernel-version'), 'utf8').trim()} (Debian cloud), busybox initramfs`,
  };
}

/** The virsh invocation for a mode: [netns-or-host, args]. Source is where the guest boots. */
function migrateCommand(o: RunOptions): { host: 'src' | 'dst' | 'cli'; args: string[]; display: string } {
  const dst = o.mode === 'back' ? ADDR.src : ADDR.dst;
  const tail = ['vm', `qemu+tcp://${dst}/system`];
  const extra: string[] = [];
  if (o.bandwidthMiBs) extra.push('--bandwidth', String(o.bandwidthMiBs));
  if (o.timeoutS) extra.push('--timeout', String(o.timeoutS));
  const study = ['--live', '--p2p', '--undefinesource', '--persistent'];
  let host: 'src' | 'dst' | 'cli' = 'src';
  let args: string[];
  switch (o.mode) {
    case 'p2p':
    case 'cancel':
      args = [...study, ...extra, ...tail];
      break;
    case 'back':
      host = 'dst';
      args = [...study, ...extra, ...tail];
      break;
    case 'managed':
      host = 'cli';
      args = ['--live', '--undefinesource', '--persistent', ...extra, ...tail];
      break;
    case 'tunnelled':
      args = [...study, '--tunnelled', ...extra, ...tail];
      break;
    case 'offline': // non-live: the guest is paused for the whole transfer
      args = ['--p2p', '--undefinesource', '--persistent', ...extra, ...tail];
      break;
    case 'postcopy':
      args = [...study, '--postcopy', ...extra, ...tail];
      break;
    case 'fail': // destination XML names a bridge that does not exist there
      args = [...study, '--xml', '/var/lib/libvirt/vm-fail.xml', ...extra, ...tail];
      break;
  }
  const connect = host === 'cli' ? `qemu+tcp://${ADDR.src}/system` : 'qemu:///system';
  return { host, args, display: `virsh -c ${connect} migrate ${args.join(' ')}` };
}

function hostCommand(host: 'src' | 'dst' | 'cli', virshArgs: string[]): [string, string[]] {
  if (host === 'cli') return ['ip', ['netns', 'exec', NS.cli, 'virsh', '-q', '-c', `qemu+tcp://${ADDR.src}/system`, ...virshArgs]];
  return [labScript, ['virsh', host, ...virshArgs]];
}

function logSize(host: 'src' | 'dst'): number {
  const f = path.join(labDir, 'hosts', host, 'log', 'libvirtd.log');
  return fs.existsSync(f) ? fs.statSync(f).size : 0;
}

function readFrom(file: string, offset: number): string {
  if (!fs.existsSync(file)) return '';
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - offset));
    fs.readSync(fd, buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

function gzipFile(file: string): string {
  fs.writeFileSync(`${file}.gz`, zlib.gzipSync(fs.readFileSync(file), { level: 9 }));
  fs.unlinkSync(file);
  return `${file}.gz`;
}

const tsharkLibvirtFields = [
  'frame.number', 'frame.time_epoch', 'ip.src', 'tcp.srcport', 'ip.dst', 'tcp.dstport', 'libvirt.program',
  'libvirt.version', 'libvirt.procedure', 'libvirt.type', 'libvirt.serial', 'libvirt.status', 'libvirt.length',
];

/** The oracle files: tshark's conversation table and the libvirt dissector's message list. */
export function writeOracles(pcap: string, base: string): string[] {
  const conv = spawnSync('tshark', ['-r', pcap, '-q', '-z', 'conv,tcp'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  fs.writeFileSync(`${base}.conv-tcp.txt`, conv.stdout);
  const fields = tsharkLibvirtFields.flatMap((f) => ['-e', f]);
  const tsv = spawnSync('tshark', ['-r', pcap, '-Y', 'libvirt', '-T', 'fields', '-E', 'header=y', '-E', 'separator=/t', ...fields], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  fs.writeFileSync(`${base}.tshark-libvirt.tsv`, tsv.stdout);
  return [`${base}.conv-tcp.txt`, `${base}.tshark-libvirt.tsv`];
}

export async function runMigration(o: RunOptions): Promise<RunResult> {
  try {
    return await runMigrationSteps(o);
  } catch (e) {
    for (const child of running) child.kill('SIGKILL');
    throw e;
  }
}

async function runMigrationSteps(o: RunOptions): Promise<RunResult> {
  fs.mkdirSync(o.outDir, { recursive: true });
  const base = path.join(o.outDir, o.name);
  const source: 'src' | 'dst' = o.mode === 'back' ? 'dst' : 'src';
  const target: 'src' | 'dst' = source === 'src' ? 'dst' : 'src';

  const t0 = Date.now();
  const timing: Record<string, number> = {};
  const mark = (what: string) => (timing[what] = (Date.now() - t0) / 1000);
  lab(['setup']);
  mark('lab_ready_s');
  lab(['vm-start', source, String(o.ramMiB), String(o.loadPct), o.accel]);
  if (o.mode === 'fail') {
    const xml = lab(['domain-xml', String(o.ramMiB), String(o.loadPct), 'nobr0', o.accel]);
    fs.writeFileSync(path.join(labDir, 'hosts', source, 'lib', 'vm-fail.xml'), xml);
  }
  if (o.loadPct > 0) await sleep(5000); // let the dirtier fill its buffer before migrating
  mark('guest_answering_s');

  const logStart = { src: logSize('src'), dst: logSize('dst') };
  const events = {
    src: startProcess(labScript, ['virsh', 'src', 'event', '--all', '--loop', '--timestamp'], `${base}.events-src.txt`),
    dst: startProcess(labScript, ['virsh', 'dst', 'event', '--all', '--loop', '--timestamp'], `${base}.events-dst.txt`),
  };
  const pcap = `${base}.pcap`;
  const tcpdump = startProcess(
    'ip',
    ['netns', 'exec', NS.sw, 'tcpdump', '-i', 'mon0', '-s0', '-B', '262144', '--time-stamp-precision=nano', '-w', pcap],
    `${base}.tcpdump-out.txt`,
    `${base}.tcpdump.txt`,
  );
  await waitForText(`${base}.tcpdump.txt`, 'listening on', 10000);
  const ping = startProcess('ip', ['netns', 'exec', NS.cli, 'ping', '-i', '0.001', '-D', '-O', ADDR.vm], `${base}.ping.txt`);
  await sleep(o.settleS * 1000);

  const cmd = migrateCommand(o);
  const [exe, args] = hostCommand(cmd.host, ['migrate', ...cmd.args]);
  const startNs = wallNs();
  const virsh = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let virshOut = '';
  virsh.stdout.on('data', (d) => (virshOut += d));
  virsh.stderr.on('data', (d) => (virshOut += d));
  let abortOutput: string | null = null;
  let postcopyOutput: string | null = null;
  const side: Promise<void>[] = [];
  let virshDone = false;
  const virshExit: Promise<number> = new Promise((resolve) =>
    virsh.once('exit', (code) => {
      virshDone = true;
      resolve(code ?? -1);
    }),
  );
  // Act on the job only once memory is flowing: a fixed delay misses it when prepare is slow.
  const whenTransferring = async (minBytes: number): Promise<boolean> => {
    const until = Date.now() + 120_000;
    while (!virshDone && Date.now() < until) {
      const info = jobFiguresFromDomjobinfo(parseDomjobinfo(lab(['virsh', source, 'domjobinfo', 'vm'], true)));
      if ((info.dataProcessedBytes ?? 0) >= minBytes) return true;
      await sleep(100);
    }
    return false;
  };
  if (o.mode === 'cancel') {
    side.push(
      whenTransferring(8 << 20).then((ok) => {
        abortOutput = ok ? lab(['virsh', source, 'domjobabort', 'vm'], true) : 'not sent: the job ended before 8 MiB were transferred';
      }),
    );
  }
  if (o.mode === 'postcopy') {
    side.push(
      whenTransferring(8 << 20).then((ok) => {
        postcopyOutput = ok ? lab(['virsh', source, 'migrate-postcopy', 'vm'], true) : 'not sent: the job ended before 8 MiB were transferred';
      }),
    );
  }
  const virshRc = await virshExit;
  const endNs = wallNs();
  await Promise.all(side);
  await sleep(o.settleS * 1000);

  await stopProcess(ping, 'SIGINT');
  // tcpdump's TPACKET_V3 ring hands a partly filled block over only after its 1 s timeout;
  // stopping earlier loses the capture's tail (seen: "received by filter" > "captured").
  await sleep(1500);
  await stopProcess(tcpdump, 'SIGINT');
  await stopProcess(events.src, 'SIGTERM');
  await stopProcess(events.dst, 'SIGTERM');

  mark('capture_stopped_s');
  const domjobRaw = {
    src: lab(['virsh', 'src', 'domjobinfo', '--completed', 'vm'], true),
    dst: lab(['virsh', 'dst', 'domjobinfo', '--completed', 'vm'], true),
  };
  const stateAfter = {
    src: lab(['virsh', 'src', 'domstate', 'vm'], true).trim(),
    dst: lab(['virsh', 'dst', 'domstate', 'vm'], true).trim(),
  };
  lab(['vm-destroy', 'src']);
  lab(['vm-destroy', 'dst']); // no idle TCG guest left burning CPU between runs

  const logs = {
    src: readFrom(path.join(labDir, 'hosts', 'src', 'log', 'libvirtd.log'), logStart.src),
    dst: readFrom(path.join(labDir, 'hosts', 'dst', 'log', 'libvirtd.log'), logStart.dst),
  };
  fs.writeFileSync(`${base}.libvirtd-src.log`, logs.src);
  fs.writeFileSync(`${base}.libvirtd-dst.log`, logs.dst);

  const pingSummary = parsePingLog(fs.readFileSync(`${base}.ping.txt`, 'utf8'));
  const eventsSrc = parseVirshEvents(fs.readFileSync(`${base}.events-src.txt`, 'utf8'));
  const eventsDst = parseVirshEvents(fs.readFileSync(`${base}.events-dst.txt`, 'utf8'));
  const jobCompleted = [...eventsSrc, ...eventsDst].find((e) => e.event === 'job-completed' && e.fields);
  const domjob = { src: parseDomjobinfo(domjobRaw.src), dst: parseDomjobinfo(domjobRaw.dst) };
  const expectSuccess = o.mode !== 'fail' && o.mode !== 'cancel';
  const files = writeOracles(pcap, base);
  mark('oracles_written_s');

  const truth = {
    schema: 'migscope-lab-run/1',
    name: o.name,
    capture: path.basename(pcap),
    pcap_bytes: fs.statSync(pcap).size,
    mode: o.mode,
    direction: source === 'src' ? 'src->dst' : 'dst->src',
    issued_at: cmd.host,
    command: cmd.display,
    virsh_rc: virshRc,
    virsh_output: virshOut,
    expected_outcome: expectSuccess ? 'migrated' : o.mode === 'fail' ? 'failed' : 'cancelled',
    outcome_matches: expectSuccess ? virshRc === 0 : virshRc !== 0,
    vm_now_running_on: stateAfter[target].startsWith('running') ? target : stateAfter[source].startsWith('running') ? source : 'none',
    domain_state_after: stateAfter,
    start_wall_ns: startNs.toString(),
    end_wall_ns: endNs.toString(),
    virsh_wall_ms: Number(endNs - startNs) / 1e6,
    hosts: {
      src: `${ADDR.src} (netns ${NS.src}, libvirtd tcp 16509)`,
      dst: `${ADDR.dst} (netns ${NS.dst}, libvirtd tcp 16509)`,
      client: `${ADDR.cli} (netns ${NS.cli}, pinger / managed virsh)`,
      vm: `${ADDR.vm} mac 52:54:00:77:00:10`,
    },
    capture_point: `netns ${NS.sw}: tc mirred mirror of ingress of every switch port to veth mon0; tcpdump -i mon0 -s0 -B 262144 --time-stamp-precision=nano`,
    versions: versions(),
    guest: {
      ram_mib: o.ramMiB,
      load_pct: o.loadPct,
      load_buffer_mib: 16,
      accel: o.accel === 'kvm' ? 'KVM (domain type=kvm)' : 'TCG (domain type=qemu)',
      vcpus: 1,
      machine: 'pc-i440fx-7.2',
      nic: 'virtio-net-pci on tap (no vhost) in host bridge br0',
      kernel_cmdline: `console=ttyS0 rdinit=/init init_on_free=1 vmip=10.77.0.10/24 load=${o.loadPct} loadmb=16`,
    },
    migrate_options: { bandwidth_mib_s: o.bandwidthMiBs ?? null, timeout_s: o.timeoutS ?? null },
    domjobinfo_completed_src: domjob.src,
    domjobinfo_completed_dst: domjob.dst,
    job_figures: {
      domjobinfo_src: jobFiguresFromDomjobinfo(domjob.src),
      domjobinfo_dst: jobFiguresFromDomjobinfo(domjob.dst),
      job_completed_event: jobCompleted?.fields ? jobFiguresFromEvent(jobCompleted.fields) : null,
    },
    events_src: eventsSrc,
    events_dst: eventsDst,
    ping: pingSummary,
    abort_output: abortOutput,
    postcopy_output: postcopyOutput,
    phase_log_lines: [...extractPhaseLines(logs.src, 'src'), ...extractPhaseLines(logs.dst, 'dst')].sort((a, b) => a.epochMs - b.epochMs),
    lab_timing: timing,
    tcpdump: fs.readFileSync(`${base}.tcpdump.txt`, 'utf8').trim().split('\n'),
    files: {} as Record<string, string>,
  };
  fs.writeFileSync(`${base}.domjobinfo-src.txt`, domjobRaw.src);
  fs.writeFileSync(`${base}.domjobinfo-dst.txt`, domjobRaw.dst);
  fs.rmSync(`${base}.tcpdump-out.txt`, { force: true });
  const kept = [
    pcap,
    gzipFile(`${base}.ping.txt`),
    gzipFile(`${base}.libvirtd-src.log`),
    gzipFile(`${base}.libvirtd-dst.log`),
    `${base}.events-src.txt`,
    `${base}.events-dst.txt`,
    `${base}.domjobinfo-src.txt`,
    `${base}.domjobinfo-dst.txt`,
    `${base}.tcpdump.txt`,
    ...files,
  ];
  for (const f of kept) truth.files[path.basename(f).slice(o.name.length + 1)] = path.basename(f);
  fs.writeFileSync(`${base}.json`, `${JSON.stringify(truth, null, 1)}\n`);
  return { name: o.name, ok: truth.outcome_matches, virshRc, wallMs: truth.virsh_wall_ms, files: [...kept, `${base}.json`] };
}
