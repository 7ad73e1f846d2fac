import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeCaptures, expandGlob, expandInputs, progressLine } from '../../src/report/batch';
import { capturesDir } from '../helpers/paths';

function tree(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-batch-'));
  for (const f of ['a/x-1.pcap', 'a/x-2.pcap.gz', 'a/notes.txt', 'b/c/y-1.pcapng', 'b/rec.json', 'z.csv']) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), '');
  }
  return dir;
}

test('inputs: directories give captures recursively, globs match files, record files by extension, misses listed', () => {
  const dir = tree();
  const rel = (files: string[]) => files.map((f) => path.relative(dir, f));
  assert.deepEqual(rel(expandGlob(path.join(dir, '*', '*.pcap*'))), ['a/x-1.pcap', 'a/x-2.pcap.gz']);
  assert.deepEqual(rel(expandGlob(path.join(dir, '**', '*-1.*'))), ['a/x-1.pcap', 'b/c/y-1.pcapng']);
  assert.deepEqual(rel(expandGlob(path.join(dir, 'a', 'x-[12].pcap'))), ['a/x-1.pcap']);
  const inputs = expandInputs([dir, path.join(dir, 'b', '*.json'), path.join(dir, 'z.csv'), path.join(dir, 'nope.pcap'), path.join(dir, '*.nothing')]);
  assert.deepEqual(rel(inputs.captures), ['a/x-1.pcap', 'a/x-2.pcap.gz', 'b/c/y-1.pcapng']);
  assert.deepEqual(rel(inputs.recordFiles), ['b/rec.json', 'z.csv']);
  assert.deepEqual(inputs.problems.map((p) => [path.relative(dir, p.file), p.message]), [['nope.pcap', 'no such file or directory'], ['*.nothing', 'pattern matches no file']]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('progress line: proportional bar, counts, bad files', () => {
  assert.equal(progressLine({ done: 1, total: 4, failed: 0, file: 'x' }, 8), '\r[##------] 1/4 captures ');
  assert.equal(progressLine({ done: 4, total: 4, failed: 1, file: 'x' }, 8), '\r[########] 4/4 captures, 1 bad ');
});

test('worker pool: replies in input order whatever finishes first; unreadable files become errors', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migscope-batch-'));
  const junk = path.join(dir, 'junk.pcap');
  fs.writeFileSync(junk, 'not a capture');
  const files = [path.join(capturesDir, 'f-fail-nobridge.pcap.gz'), path.join(dir, 'missing.pcap'), junk, path.join(capturesDir, 'f-fail-nobridge.cap.gz')];
  const progress: number[] = [];
  const replies = await analyzeCaptures(files, { jobs: 2, onProgress: (p) => progress.push(p.done) });
  assert.deepEqual(replies.map((r) => r.file), files);
  assert.deepEqual(progress, [1, 2, 3, 4]);
  assert.equal(replies[0].records.length, 1);
  assert.equal(replies[0].records[0].outcome, 'failed', 'the destination rejected this migration');
  assert.ok(replies[1].error, 'missing file reported');
  assert.ok(replies[2].error || replies[2].problems.length > 0, 'junk file reported');
  assert.equal(replies[3].records.length, 1, 'DPMI trace of the same migration');
  fs.rmSync(dir, { recursive: true, force: true });
});
