// Live capture building blocks that need no root: tcpdump's own output lines (recorded from
// tcpdump 4.99.3 / libpcap 1.10.3 on Debian 12) parsed and classified, the drop ledger, rotation
// names, and the rotating pcapng writer on a real capture (files valid and complete).
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  classifyTcpdumpFailure, DropLedger, parseCaptureCounters, parseDeviceList, parseListeningLine, tcpdumpArgs,
} from '../../src/capture/live';
import { RotatingPcapngWriter, rotationFileName, WritingSink } from '../../src/capture/live-writer';
import { readCapture } from '../../src/capture/reader';
import { collector } from './collect';
import { capturesDir } from '../helpers/paths';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-live-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

test('counters: the SIGUSR1 one-line form and the three-line exit form', () => {
  assert.deepEqual(parseCaptureCounters('tcpdump: 2371 packets captured, 3000 packets received by filter, 0 packets dropped by kernel'), {
    captured: 2371, receivedByFilter: 3000, droppedByKernel: 0,
  });
  assert.deepEqual(parseCaptureCounters('368136 packets captured\n526880 packets received by filter\n158744 packets dropped by kernel\n'), {
    captured: 368136, receivedByFilter: 526880, droppedByKernel: 158744,
  });
  assert.deepEqual(parseCaptureCounters('1 packet captured\n1 packet received by filter\n0 packets dropped by kernel\n3 packets dropped by interface'), {
    captured: 1, receivedByFilter: 1, droppedByKernel: 0, droppedByInterface: 3,
  });
  // Without the kernel line the report is not complete yet.
  assert.equal(parseCaptureCounters('52688 packets captured\n52688 packets received by filter\n'), undefined);
  assert.equal(parseCaptureCounters('tcpdump: listening on lvb-rx, link-type EN10MB (Ethernet), snapshot length 262144 bytes'), undefined);
});

test('tcpdump failures become errors that say what to do', () => {
  const permission = classifyTcpdumpFailure("tcpdump: lo: You don't have permission to perform this capture on that device\n(socket: Operation not permitted)\n", { interface: 'lo' });
  assert.equal(permission.kind, 'permission');
  assert.match(permission.message, /no permission to capture on lo: run as root/);
  assert.match(permission.message, /cap_net_raw/);
  const device = classifyTcpdumpFailure('tcpdump: nosuchif0: No such device exists\n(No such device exists)\n', { interface: 'nosuchif0' });
  assert.equal(device.kind, 'no-device');
  assert.match(device.message, /no interface "nosuchif0" \(see migscope live --list\)/);
  const filter = classifyTcpdumpFailure("tcpdump: can't parse filter expression: syntax error\n", { interface: 'lo', filter: 'tcp port' });
  assert.equal(filter.kind, 'bad-filter');
  assert.match(filter.message, /rejected the filter "tcp port"/);
  const other = classifyTcpdumpFailure('', { interface: 'lo' });
  assert.equal(other.kind, 'failed');
  assert.match(other.message, /no message/);
});

test('tcpdump -D listing, listening line, command line', () => {
  const listing = '1.eth0 [Up, Running, Connected]\n2.any (Pseudo-device that captures on all interfaces) [Up, Running]\n3.lo [Up, Running, Loopback]\n4.ifb0 [none]\n7.nflog (Linux netfilter log (NFLOG) interface) [none]\n';
  const devices = parseDeviceList(listing);
  assert.deepEqual(devices.map((d) => d.name), ['eth0', 'any', 'lo', 'ifb0', 'nflog']);
  assert.deepEqual(devices[1], { name: 'any', description: 'Pseudo-device that captures on all interfaces', flags: ['Up', 'Running'] });
  assert.deepEqual(devices[3].flags, []);
  assert.equal(devices[4].description, 'Linux netfilter log (NFLOG) interface');
  assert.deepEqual(parseListeningLine('tcpdump: listening on mon0, link-type EN10MB (Ethernet), snapshot length 262144 bytes'), { interface: 'mon0', linkType: 'EN10MB' });
  const args = tcpdumpArgs({ interface: 'mon0', filter: 'tcp port 16509 or icmp' });
  assert.deepEqual(args.slice(0, 4), ['-i', 'mon0', '-w', '-']);
  assert.ok(args.includes('--time-stamp-precision=nano') && args.includes('-U') && args.includes('-s0'));
  assert.equal(args[args.indexOf('-B') + 1], '262144');
  assert.equal(args.at(-1), 'tcp port 16509 or icmp', 'the filter is one argument, never split or shell-parsed');
  assert.equal(tcpdumpArgs({ interface: 'x', filter: '  ' }).at(-1), '262144', 'a blank filter is no filter');
});

test('drop ledger: drops reported before a migration started do not count against it', () => {
  const ledger = new DropLedger();
  ledger.report(0, { sec: 100, ps: 0 });
  ledger.report(5, { sec: 110, ps: 0 }); // 5 drops seen by 110 s
  assert.equal(ledger.droppedSince({ sec: 120, ps: 0 }), 0);
  assert.equal(ledger.droppedSince({ sec: 110, ps: 0 }), 5, 'a report at the start instant may include drops after it');
  assert.equal(ledger.droppedSince({ sec: 105, ps: 0 }), 5);
  ledger.report(9, { sec: 130, ps: 0 });
  assert.equal(ledger.droppedSince({ sec: 120, ps: 0 }), 4);
  assert.equal(ledger.total, 9);
});

test('drop ledger (property): droppedSince = latest − last total reported before start, never negative', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(1000), fc.nat(50)), { maxLength: 40 }), fc.nat(1100), (steps, startSec) => {
      const ledger = new DropLedger();
      let total = 0;
      let t = 0;
      const history: { t: number; total: number }[] = [];
      for (const [dt, more] of steps) {
        t += dt;
        total += more;
        ledger.report(total, { sec: t, ps: 0 });
        history.push({ t, total });
      }
      const base = history.filter((h) => h.t < startSec).reduce((b, h) => h.total, 0);
      assert.equal(ledger.droppedSince({ sec: startSec, ps: 0 }), total - base);
    }),
  );
});

test('rotation names keep time order in name order', () => {
  assert.equal(rotationFileName('/x/watch.pcapng', 1, false), '/x/watch.pcapng');
  assert.equal(rotationFileName('/x/watch.pcapng', 1, true), '/x/watch-000001.pcapng');
  assert.equal(rotationFileName('/x/watch.pcapng', 12, true), '/x/watch-000012.pcapng');
  assert.equal(rotationFileName('watch', 3, true), 'watch-000003.pcapng');
  const names = [9, 10, 100, 2].map((i) => rotationFileName('w.pcapng', i, true));
  assert.deepEqual([...names].sort(), [2, 9, 10, 100].map((i) => rotationFileName('w.pcapng', i, true)));
});

/** A real capture through WritingSink into rotating files; what the files hold, read back. */
async function writeRotated(rotateBytes: number, maxFiles?: number) {
  const dir = fs.mkdtempSync(path.join(tmp, 'rot-'));
  const writer = new RotatingPcapngWriter(path.join(dir, 'w.pcapng'), { rotateBytes, maxFiles });
  const original = collector();
  const sink = new WritingSink(writer, original, (err) => assert.fail(err), 'mon0');
  await readCapture(path.join(capturesDir, 'f-fail-nobridge.pcap.gz'), sink);
  writer.close();
  return { dir, writer, original };
}

test('rotating writer: every file a complete pcapng under the size limit, together the whole capture', async () => {
  const limit = 200_000;
  const { dir, writer, original } = await writeRotated(limit);
  const files = fs.readdirSync(dir).sort();
  assert.deepEqual(files.map((f) => path.join(dir, f)), [...writer.files]);
  assert.ok(files.length > 5, `${files.length} files`);
  const back = collector();
  for (const file of writer.files) {
    assert.ok(fs.statSync(file).size <= limit, `${file} is ${fs.statSync(file).size} bytes`);
    const one = collector();
    const summary = await readCapture(file, one);
    assert.equal(summary.format, 'pcapng');
    assert.deepEqual(summary.problems, []);
    assert.equal(summary.interfaces[0].name, 'mon0');
    assert.equal(summary.interfaces[0].tsDigits, 9);
    back.packets.push(...one.packets);
  }
  assert.equal(back.packets.length, original.packets.length);
  back.packets.forEach((p, i) => {
    const o = original.packets[i];
    assert.ok(p.sec === o.sec && p.ps === o.ps && p.wirelen === o.wirelen && p.data.equals(o.data), `packet ${i + 1} differs`);
  });
  // Concatenated in name order: one multi-section pcapng, as `cat w-*.pcapng` gives.
  const joined = path.join(tmp, 'joined.pcapng');
  fs.writeFileSync(joined, Buffer.concat(writer.files.map((f) => fs.readFileSync(f))));
  const all = collector();
  assert.deepEqual((await readCapture(joined, all)).problems, []);
  assert.equal(all.packets.length, original.packets.length);
});

const noCapinfos = spawnSync('capinfos', ['-v'], { stdio: 'ignore' }).status !== 0 && 'capinfos (Wireshark) is not installed';

test('rotating writer: capinfos accepts each file and counts its packets', { skip: noCapinfos }, async () => {
  const { writer } = await writeRotated(300_000);
  let total = 0;
  for (const file of writer.files) {
    const r = spawnSync('capinfos', ['-M', '-c', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    total += Number(/Number of packets:\s+(\d+)/.exec(r.stdout)![1]);
  }
  assert.equal(total, writer.packets);
});

test('rotating writer: --rotate-files keeps only the newest K files', async () => {
  const { dir, writer, original } = await writeRotated(150_000, 3);
  const left = fs.readdirSync(dir).sort().map((f) => path.join(dir, f));
  assert.deepEqual(left, [...writer.files]);
  assert.equal(left.length, 3);
  assert.ok(writer.removedFiles.length > 0);
  assert.ok(writer.removedFiles.every((f) => !fs.existsSync(f) && f < left[0]), 'the oldest were removed');
  // The newest files hold the end of the capture.
  const last = collector();
  await readCapture(left[2], last);
  assert.deepEqual(last.packets.at(-1)!.data, original.packets.at(-1)!.data);
});

test('writing sink: a failed write is reported once and analysis still gets every packet', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'fail-'));
  const writer = new RotatingPcapngWriter(path.join(dir, 'gone', 'w.pcapng')); // directory does not exist
  const downstream = collector();
  const errors: Error[] = [];
  const summary = await readCapture(path.join(capturesDir, 'f-fail-nobridge.pcap.gz'), new WritingSink(writer, downstream, (e) => errors.push(e)));
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /ENOENT/);
  assert.ok(summary.packets > 4000);
  assert.equal(downstream.packets.length, summary.packets);
});
