// The HTML report must render in a real browser: headless Chromium (Debian package `chromium`)
// loads it, we read the DOM it built and every console message it logged, and keep a screenshot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { MigrationRecord } from '../../src/migration/record';
import { buildReport, writeReport } from '../../src/report/build';
import { compilePattern } from '../../src/stats/factors';
import { repoRoot } from '../helpers/paths';

const chromium = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);
const skip = chromium ? false : 'no headless Chromium installed (Debian: apt-get install chromium)';

interface BrowserRun {
  dom: string;
  consoleLines: string[];
}

function loadInChromium(file: string, screenshot?: string): BrowserRun {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-chromium-'));
  const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--enable-logging=stderr', '--v=0'];
  try {
    const run = spawnSync(chromium as string, [...flags, '--dump-dom', `file://${file}`], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.status, 0, `chromium failed: ${run.stderr}`);
    if (screenshot) {
      const shot = spawnSync(chromium as string, [...flags, `--screenshot=${screenshot}`, '--window-size=1200,2400', `file://${file}`], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(shot.status, 0, `chromium screenshot failed: ${shot.stderr}`);
    }
    // Chromium logs every console message of the page as "...:INFO:CONSOLE(line)] "text", source: ...".
    return { dom: run.stdout, consoleLines: run.stderr.split('\n').filter((l) => /:CONSOLE[:(]/.test(l)) };
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

function records(): MigrationRecord[] {
  const out: MigrationRecord[] = [];
  for (const flavor of ['small', 'large'])
    for (const load of ['0', '50'])
      for (let run = 1; run <= 4; run++) {
        const transfer = (flavor === 'large' ? 2 : 0.6) + run * 0.01 + (load === '50' ? 0.2 : 0);
        out.push({
          capture: `${flavor}-${load}-${run}.pcap`, index: 1, source: 'a', destination: 'b', mode: 'p2p', outcome: 'completed', tsDigits: 3, start: '10.000',
          phases: { remoteConnect: { start: '10.000', end: '10.050', seconds: 0.05 }, transfer: { start: '10.050', end: (10.05 + transfer).toFixed(3), seconds: transfer } },
          migrationTimeSec: 0.05 + transfer, transfer: { bytes: 5e7 + run, throughputBps: 5e7 / transfer }, warnings: [],
        });
      }
  return out;
}

test('HTML report renders in headless Chromium: no console messages, every chart present', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-report-html-'));
  const recs = records();
  const data = buildReport(recs, { ci: { method: 't', confidence: 0.95 }, sources: { pattern: compilePattern('{flavor}-{load}-{run}.pcap') }, files: recs.length, problems: [] });
  await writeReport(data, recs, dir);
  const artifacts = path.join(repoRoot, 'test-artifacts');
  fs.mkdirSync(artifacts, { recursive: true });
  const { dom, consoleLines } = loadInChromium(path.join(dir, 'report.html'), path.join(artifacts, 'report-html.png'));
  assert.deepEqual(consoleLines, []);
  const charts = fs.readdirSync(path.join(dir, 'charts')).map((f) => f.replace(/\.svg$/, ''));
  assert.ok(charts.includes('phase-shares') && charts.includes('timeline') && charts.includes('mean-ci-phase-transfer'), charts.join(' '));
  for (const name of charts) assert.match(dom, new RegExp(`<figure id="chart-${name}" class="chart"><svg `), `chart ${name} in the rendered page`);
  // The browser parsed the inline SVG into real elements: each stacked bar is there (4 groups × 2 phases).
  assert.equal((dom.match(/aria-roledescription="bar"/g) ?? []).length, 4 * 2 + recs.length * 2);
  assert.equal((dom.match(/<table class="stats">/g) ?? []).length, 4);
  assert.equal((dom.match(/<table class="shares">/g) ?? []).length, 4);
  assert.ok(fs.statSync(path.join(artifacts, 'report-html.png')).size > 10_000, 'screenshot written');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the console check can fail: a page that logs an error is caught', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-report-html-'));
  const file = path.join(dir, 'bad.html');
  fs.writeFileSync(file, '<!DOCTYPE html><html><body><script>console.error("deliberate")</script></body></html>');
  assert.equal(loadInChromium(file).consoleLines.length, 1);
  fs.rmSync(dir, { recursive: true, force: true });
});
