// analyze --location on the real capmerge trace (fixtures/dpmi/merged.cap: every frame at mpA:CONV and mpB:CONV).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeCapture } from '../../src/migration/analyze-capture';
import { fixture } from '../helpers/paths';

const merged = fixture('dpmi', 'merged.cap');

test('--location selects one measurement location; selecting both counts each frame once', async () => {
  const all = await analyzeCapture(merged, { enrichers: [] });
  const a = await analyzeCapture(merged, { enrichers: [], locations: ['mpA:CONV'] });
  const b = await analyzeCapture(merged, { enrichers: [], locations: ['mpB:*'] });
  const both = await analyzeCapture(merged, { enrichers: [], locations: ['mp*'] });
  assert.equal(all.summary.packets, 200, 'capinfo: 200 packets in the merged trace');
  assert.equal(a.summary.packets, 100);
  assert.equal(b.summary.packets, 100);
  assert.equal(both.summary.packets, 100, 'duplicates across locations suppressed');
  assert.equal(a.problems.length, 0);
});

test('--location that matches nothing is reported, naming the locations there are', async () => {
  const none = await analyzeCapture(merged, { enrichers: [], locations: ['mpC:CONV'] });
  assert.equal(none.summary.packets, 0);
  assert.ok(none.problems.some((p) => /mpC:CONV matches no location .*mpA:CONV/.test(p.message)), none.problems.map((p) => p.message).join('\n'));
});

test('CLI: --location before the capture name, repeated or comma-separated', async () => {
  const { spawnSync } = await import('node:child_process');
  const { cliPath } = await import('../helpers/paths');
  const ok = spawnSync(process.execPath, [cliPath, 'analyze', '--location', 'mpA:*,mpB:CONV', merged], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /dpmi, 100 packets/);
  const typo = spawnSync(process.execPath, [cliPath, 'analyze', '--location', 'mpZ', merged], { encoding: 'utf8' });
  assert.equal(typo.status, 2);
  assert.match(typo.stderr, /--location mpZ matches no location/);
});
