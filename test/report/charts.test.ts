// Charts are checked in the rendered SVG itself: vega writes one <path> per mark with an
// aria-label of its data, so bar widths and plotted values can be compared with the statistics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MigrationRecord } from '../../src/migration/record';
import { meanCiSpec, phaseShareSpec, renderSvg, timelineSpec } from '../../src/report/charts';
import { compilePattern, factorsOf } from '../../src/stats/factors';
import { groupRecords, summarizeGroup } from '../../src/stats/groups';
import { metricByKey } from '../../src/stats/metrics';

function record(capture: string, phases: [string, number][], outcome: MigrationRecord['outcome'] = 'completed'): MigrationRecord {
  let t = 0;
  const spans: MigrationRecord['phases'] = {};
  for (const [name, seconds] of phases) {
    spans[name as keyof MigrationRecord['phases']] = { start: `1000.${String(Math.round(t * 1e6)).padStart(6, '0')}`, end: `1000.${String(Math.round((t + seconds) * 1e6)).padStart(6, '0')}`, seconds };
    t += seconds;
  }
  return { capture, index: 1, source: 'a', destination: 'b', mode: 'p2p', outcome, tsDigits: 6, start: '1000.000000', phases: spans, migrationTimeSec: t, warnings: [] };
}

const records = [
  record('small-0-1.pcap', [['remoteConnect', 0.05], ['preparation', 0.2], ['transfer', 0.5], ['finish', 0.1], ['cleanup', 0.05]]),
  record('small-0-2.pcap', [['remoteConnect', 0.07], ['preparation', 0.2], ['transfer', 0.7], ['finish', 0.1], ['cleanup', 0.05]]),
  record('large-0-1.pcap', [['remoteConnect', 0.05], ['preparation', 0.2], ['transfer', 2.0], ['finish', 0.1], ['cleanup', 0.05]]),
  record('large-0-2.pcap', [['remoteConnect', 0.05], ['preparation', 0.3], ['transfer', 2.2], ['finish', 0.1], ['cleanup', 0.05]]),
];
const pattern = compilePattern('{flavor}-{load}-{run}.pcap');
const groups = groupRecords(records, (r) => factorsOf(r, { pattern })).map((g) => summarizeGroup(g, { method: 't', confidence: 0.95 }));

function marks(svg: string): { label: string; d: string }[] {
  return [...svg.matchAll(/<path aria-label="([^"]*)" role="graphics-symbol"[^>]*?d="([^"]*)"/g)].map((m) => ({ label: m[1], d: m[2] }));
}

test('phase-share bars: one bar per phase and group, each group filling 100% of the width', async () => {
  const svg = await renderSvg(phaseShareSpec(groups));
  assert.match(svg, /^<svg/);
  const bars = marks(svg);
  assert.equal(bars.length, 2 * 5);
  for (const g of groups) {
    const mine = bars.filter((b) => b.label.includes(`group: ${g.key};`));
    assert.equal(mine.length, 5);
    const width = mine.reduce((sum, b) => sum + Number(/h([\d.]+)/.exec(b.d)?.[1]), 0);
    assert.ok(Math.abs(width - 560) < 0.01, `bars of ${g.key} span ${width}px`);
    for (const share of g.phaseShares) {
      const bar = mine.find((b) => b.label.includes(`phase: ${share.label};`));
      const percent = Number(/share of phase total: ([\d.]+)%/.exec(bar?.label ?? '')?.[1]);
      assert.ok(Math.abs(percent - share.share * 100) < 1e-5, `${g.key} ${share.label}: ${percent}% vs ${share.share}`);
    }
  }
});

test('mean ± CI chart plots each group mean with its interval', async () => {
  const metric = metricByKey('phase.transfer')!;
  const svg = await renderSvg(meanCiSpec(groups, metric, ['flavor', 'load'])!);
  const points = marks(svg).filter((m) => m.label.includes('mean: '));
  assert.equal(points.length, groups.length);
  for (const g of groups) {
    const s = g.metrics['phase.transfer'];
    const p = points.find((m) => m.label.includes(`level: ${g.factors.flavor};`));
    assert.ok(p, `point of ${g.key}`);
    assert.ok(Math.abs(Number(/mean: ([\d.e-]+)/.exec(p.label)?.[1]) - (s.mean as number)) < 1e-9);
    assert.ok(Math.abs(Number(/low: ([\d.e-]+)/.exec(p.label)?.[1]) - (s.ciLow as number)) < 1e-9);
  }
  assert.match(svg, /Student t/);
  assert.equal(meanCiSpec(groups, metricByKey('downtime.gap')!, ['flavor']), undefined, 'no data, no chart');
});

test('timeline: one bar per phase per migration, capped with a note', async () => {
  const svg = await renderSvg(timelineSpec(records)!);
  assert.equal(marks(svg).length, 4 * 5);
  const capped = await renderSvg(timelineSpec(records, { maxMigrations: 2 })!);
  assert.equal(marks(capped).length, 2 * 5);
  assert.match(capped, /first 2 of 4/);
});
