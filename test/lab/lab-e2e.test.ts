// One real migration through the lab, end to end (root + MIGSCOPE_LAB_TEST=1; takes ~1 min and
// two daemons + a TCG guest, so CI does not run it). Leaves the lab up; `lab teardown` ends it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertRunConsistent } from './capture-facts';

const labJs = path.resolve(__dirname, '..', '..', 'scripts', 'lab', 'lab.js');
const skip =
  process.env.MIGSCOPE_LAB_TEST !== '1'
    ? 'set MIGSCOPE_LAB_TEST=1 to run a real libvirt migration (needs root, ~1 min)'
    : process.getuid?.() !== 0
      ? 'the lab needs root (namespaces, tc, libvirtd, tcpdump)'
      : undefined;

test('lab migrate --mode p2p performs a real migration with capture, ground truth and oracles', { skip, timeout: 600_000 }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-e2e-'));
  try {
    const r = spawnSync(process.execPath, [labJs, 'migrate', '--mode', 'p2p', '--out', out, '--name', 'e2e'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const truth = JSON.parse(fs.readFileSync(path.join(out, 'e2e.json'), 'utf8'));
    assert.equal(truth.virsh_rc, 0);
    assert.equal(truth.vm_now_running_on, 'dst');
    assert.ok(truth.job_figures.job_completed_event.dataProcessedBytes > 10 << 20);
    assert.ok(truth.phase_log_lines.some((l: { marker: string }) => l.marker === 'guest-stopped'));
    assert.match(truth.tcpdump.join('\n'), /\b0 packets dropped by kernel/);
    await assertRunConsistent(path.join(out, 'e2e.json'));
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
