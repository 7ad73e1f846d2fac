// `npm run lab -- <verb>`: the migration lab (real libvirt daemons and a real QEMU guest in
// network namespaces on this machine). Plumbing lives in lab.sh; this file parses options,
// runs migrations and experiments, and slims captures for fixtures. See scripts/lab/README.md.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { labScript, modes, runMigration, type Mode, type RunOptions } from './run';
import { makeFixtures } from './make-fixtures';
import { slimCapture } from './slim-capture';

function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    console.error('lab: must run as root: it creates network namespaces, tc mirrors, libvirt daemons and captures (try sudo)');
    process.exit(1);
  }
}

function shell(verb: string): void {
  requireRoot();
  const r = spawnSync(labScript, [verb], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

/** 'auto' → what lab.sh's probe found (it needs the guest image, so the lab is set up first). */
function resolveAccel(accel: 'auto' | 'qemu' | 'kvm'): 'qemu' | 'kvm' {
  if (accel !== 'auto') return accel;
  shell('setup');
  const r = spawnSync(labScript, ['accel'], { encoding: 'utf8' });
  return r.stdout.trim() === 'kvm' ? 'kvm' : 'qemu';
}

const list = (v: string | number): number[] =>
  String(v)
    .split(',')
    .filter(Boolean)
    .map((x) => {
      const n = Number(x);
      if (!Number.isFinite(n) || n < 0) throw new Error(`not a number: ${x}`);
      return n;
    });

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
}

async function experiment(o: {
  ram: number[];
  load: number[];
  runs: number;
  out: string;
  mode: Mode;
  accel: 'qemu' | 'kvm';
  settle: number;
  timeout?: number;
}): Promise<number> {
  fs.mkdirSync(o.out, { recursive: true });
  const manifestPath = path.join(o.out, 'manifest.csv');
  if (!fs.existsSync(manifestPath)) fs.writeFileSync(manifestPath, 'file,mode,ram_mib,load_pct,run,virsh_rc,outcome_ok,virsh_wall_ms\n');
  const total = o.ram.length * o.load.length * o.runs;
  let done = 0;
  let failed = 0;
  const t0 = Date.now();
  for (const ram of o.ram) {
    for (const load of o.load) {
      const group = `ram${ram}-load${load}`;
      for (let run = 1; run <= o.runs; run++) {
        const name = `${o.mode}-${group}-run${String(run).padStart(2, '0')}`;
        const runStart = Date.now();
        done++;
        let line: string;
        try {
          const r = await runMigration({
            mode: o.mode,
            ramMiB: ram,
            loadPct: load,
            outDir: path.join(o.out, group),
            name,
            accel: o.accel,
            settleS: o.settle,
            timeoutS: o.timeout,
          });
          fs.appendFileSync(manifestPath, `${group}/${name}.pcap,${o.mode},${ram},${load},${run},${r.virshRc},${r.ok},${r.wallMs.toFixed(3)}\n`);
          if (!r.ok) failed++;
          line = `rc=${r.virshRc} virsh ${r.wallMs.toFixed(0)} ms`;
        } catch (e) {
          // A broken run must not end the experiment: tear the lab down, it is rebuilt next run.
          failed++;
          line = `FAILED (${(e as Error).message.split('\n')[0]}), lab torn down`;
          spawnSync(labScript, ['teardown'], { stdio: 'ignore' });
        }
        const eta = ((Date.now() - t0) / done) * (total - done);
        console.log(`[${done}/${total}] ${group} run ${run}: ${line}; ${((Date.now() - runStart) / 1000).toFixed(1)} s; ~${Math.round(eta / 1000)} s left`);
      }
    }
  }
  console.log(`experiment: ${total - failed}/${total} runs as expected in ${((Date.now() - t0) / 1000).toFixed(0)} s; manifest ${manifestPath}`);
  return failed;
}

void yargs(hideBin(process.argv))
  .scriptName('lab')
  .command('setup', 'install packages, build the guest, create namespaces, start two libvirtd (idempotent)', {}, () => shell('setup'))
  .command('teardown', 'stop guests and daemons, delete the lab namespaces (idempotent)', {}, () => shell('teardown'))
  .command('status', 'show what of the lab is up', {}, () => shell('status'))
  .command(
    'migrate',
    'one real migration with capture, ping log, ground truth and oracles',
    (y) =>
      y
        .option('mode', { choices: modes, default: 'p2p' as Mode })
        .option('ram', { type: 'number', default: 128, describe: 'guest RAM, MiB' })
        .option('load', { type: 'number', default: 0, describe: 'memory-dirtying duty cycle, %' })
        .option('out', { type: 'string', default: 'lab-runs' })
        .option('name', { type: 'string', describe: 'file name stem (default MODE-ramR-loadL-TIME)' })
        .option('accel', { choices: ['auto', 'qemu', 'kvm'] as const, default: 'auto' as const, describe: 'auto: KVM if a KVM guest boots here, else qemu (TCG)' })
        .option('bandwidth', { type: 'number', describe: 'virsh migrate --bandwidth MiB/s (cancel default 8)' })
        .option('timeout', { type: 'number', describe: 'virsh migrate --timeout s (suspend to force completion)' })
        .option('settle', { type: 'number', default: 3, describe: 'seconds captured before and after virsh' }),
    async (a) => {
      requireRoot();
      const o: RunOptions = {
        mode: a.mode,
        ramMiB: a.ram,
        loadPct: a.load,
        outDir: a.out,
        name: a.name ?? `${a.mode}-ram${a.ram}-load${a.load}-${stamp()}`,
        accel: resolveAccel(a.accel),
        bandwidthMiBs: a.bandwidth ?? (a.mode === 'cancel' ? 8 : a.mode === 'postcopy' ? 16 : undefined),
        timeoutS: a.timeout,
        settleS: a.settle,
      };
      const t0 = Date.now();
      const r = await runMigration(o);
      console.log(`${r.name}: virsh rc=${r.virshRc} (${r.ok ? 'as expected' : 'NOT as expected'}), virsh ${r.wallMs.toFixed(0)} ms, run ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      for (const f of r.files) console.log(`  ${f}`);
      process.exitCode = r.ok ? 0 : 4;
    },
  )
  .command(
    'experiment',
    'repeated runs over RAM × load groups: one directory per group, manifest.csv',
    (y) =>
      y
        .option('ram', { type: 'string', default: '128' })
        .option('load', { type: 'string', default: '0' })
        .option('runs', { type: 'number', default: 10 })
        .option('mode', { choices: modes, default: 'p2p' as Mode })
        .option('out', { type: 'string', default: 'lab-experiment' })
        .option('accel', { choices: ['auto', 'qemu', 'kvm'] as const, default: 'auto' as const })
        .option('timeout', { type: 'number' })
        .option('settle', { type: 'number', default: 3 }),
    async (a) => {
      requireRoot();
      const failed = await experiment({ ...a, accel: resolveAccel(a.accel), ram: list(a.ram), load: list(a.load) });
      process.exitCode = failed ? 4 : 0;
    },
  )
  .command(
    'slim <input> <output>',
    'cut migration-data payload to a few bytes (caplen < wirelen), keep libvirt RPC and ICMP whole',
    (y) =>
      y
        .positional('input', { type: 'string', demandOption: true })
        .positional('output', { type: 'string', demandOption: true })
        .option('keep', { type: 'number', default: 4, describe: 'TCP payload bytes kept per migration-data packet' }),
    async (a) => {
      const s = await slimCapture(a.input, a.output, { keepPayload: a.keep });
      console.log(`${a.output}: ${s.packets} packets, ${s.slimmed} slimmed, ${s.bytesIn} → ${s.bytesOut} bytes`);
    },
  )
  .command(
    'fixtures <from> <to>',
    'copy runs as fixtures: slimmed gzipped captures (except --full names), ground truth, oracles, manifests',
    (y) =>
      y
        .positional('from', { type: 'string', demandOption: true })
        .positional('to', { type: 'string', demandOption: true })
        .option('full', { type: 'string', default: '', describe: 'comma-separated run names kept whole (gzip -9)' }),
    async (a) => {
      const files = await makeFixtures(a.from, a.to, new Set(a.full.split(',').filter(Boolean)));
      console.log(`${files.length} files written under ${a.to}`);
    },
  )
  .demandCommand(1)
  .strict()
  .help()
  .parseAsync()
  .catch((e: Error) => {
    console.error(`lab: ${e.message}`);
    process.exit(1);
  });
