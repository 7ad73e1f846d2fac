// Every committed lab fixture is consistent: its capture holds the libvirt conversation and the
// migration data connection the mode implies, the ping log and the ICMP packets agree on what
// went unanswered, and tshark's oracle files describe the same frames. Runs in CI (no root).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fixture } from '../helpers/paths';
import { parseCsv } from '../../src/stats/csv-parse';
import { assertRunConsistent } from './capture-facts';

const labFixtures = fixture('lab');

function runJsonFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return runJsonFiles(p);
    return e.name.endsWith('.json') && JSON.parse(fs.readFileSync(p, 'utf8')).schema === 'migscope-lab-run/1' ? [p] : [];
  });
}

const runs = runJsonFiles(labFixtures);

test('the lab fixtures cover every mode', () => {
  const modes = new Set(runs.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')).mode));
  for (const m of ['p2p', 'back', 'managed', 'tunnelled', 'offline', 'fail', 'cancel']) assert.ok(modes.has(m), `mode ${m} missing`);
  assert.ok(runs.some((f) => JSON.parse(fs.readFileSync(f, 'utf8')).guest.load_pct > 0), 'a loaded run');
});

for (const file of runs) {
  test(`consistent: ${path.relative(labFixtures, file)}`, async () => {
    const truth = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(truth.outcome_matches, true, `virsh rc ${truth.virsh_rc}: ${truth.virsh_output}`);
    await assertRunConsistent(file);
  });
}

test('the repeated group: manifest rows name existing runs and carry their factors', () => {
  const manifests = fs.existsSync(labFixtures)
    ? fs.readdirSync(labFixtures, { recursive: true }).map(String).filter((f) => f.endsWith('manifest.csv'))
    : [];
  assert.ok(manifests.length >= 1, 'no manifest.csv under fixtures/lab');
  for (const m of manifests) {
    const manifestPath = path.join(labFixtures, m);
    const [header, ...rows] = parseCsv(fs.readFileSync(manifestPath, 'utf8')).filter((r) => r.length > 1);
    const col = (name: string) => header.indexOf(name);
    assert.ok(rows.length >= 10, `${m}: ${rows.length} runs`);
    for (const r of rows) {
      const capture = path.join(path.dirname(manifestPath), r[col('file')]);
      assert.ok(fs.existsSync(capture) || fs.existsSync(`${capture}.gz`), `${capture} missing`);
      const truth = JSON.parse(fs.readFileSync(capture.replace(/\.pcap(\.gz)?$/, '.json'), 'utf8'));
      assert.equal(truth.mode, r[col('mode')]);
      assert.equal(truth.guest.ram_mib, Number(r[col('ram_mib')]));
      assert.equal(truth.guest.load_pct, Number(r[col('load_pct')]));
      assert.equal(truth.virsh_rc, Number(r[col('virsh_rc')]));
    }
  }
});
