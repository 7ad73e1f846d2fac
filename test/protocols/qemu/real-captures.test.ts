// The decoder on real QEMU 7.2 migrations, compared with the hypervisor's own job statistics
// (the source's job-completed event in the ground-truth JSON) and libvirt's events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { analyzeCapture } from '../../../src/migration/analyze-capture';
import { runPipeline } from '../../../src/flow/pipeline';
import { QemuStreamEnricher } from '../../../src/protocols/qemu/enricher';
import { QemuStreamDecoder, type QemuStreamResult } from '../../../src/protocols/qemu/stream-decoder';
import type { Direction, FlowInfo, ProtocolDetector, StreamConsumer } from '../../../src/flow/stream-consumer';
import { parseTimestamp, secondsBetween } from '../../../src/core/timestamp';
import { capturesDir, sharedCapturesDir } from '../../helpers/paths';

interface GroundTruth {
  events_src: string[];
}

function jobCompleted(truth: GroundTruth): Record<string, number> {
  const line = truth.events_src.find((e) => e.includes("'job-completed'"));
  assert.ok(line);
  const out: Record<string, number> = {};
  for (const m of line.matchAll(/(\w+): (\d+)/g)) out[m[1]] = Number(m[2]);
  return out;
}

function eventSeconds(truth: GroundTruth, needle: string): number {
  const line = truth.events_src.find((e) => e.includes(needle));
  assert.ok(line, needle);
  return Date.parse(line.slice(0, 23).replace(' ', 'T') + 'Z') / 1000;
}

const CASES = [
  { name: 'a-p2p-src2dst', dir: capturesDir },
  { name: 'd-p2p-tunnelled', dir: capturesDir },
  { name: 'g3-loaded-4M-bw12-multipass-repeat', dir: sharedCapturesDir },
];

for (const c of CASES) {
  const capture = path.join(c.dir, `${c.name}.pcap.gz`);
  const skip = fs.existsSync(capture) ? false : `${capture} not present`;
  test(`${c.name}: stream decoded through analyze agrees with the job statistics`, { skip }, async () => {
    const truth = JSON.parse(fs.readFileSync(path.join(c.dir, `${c.name}.json`), 'utf8')) as GroundTruth;
    const job = jobCompleted(truth);
    const enricher = new QemuStreamEnricher();
    const analysis = await analyzeCapture(capture, { enrichers: [enricher] });
    assert.equal(analysis.records.length, 1);
    const record = analysis.records[0];
    const q = record.qemuStream;
    assert.ok(q, 'the migration has a decoded QEMU stream');
    assert.equal(q.complete, true);
    assert.equal(q.stoppedReason, undefined);
    assert.equal(q.machineType, 'pc-i440fx-7.2');
    assert.equal(q.ramBytes, job.memory_total);
    // every page the hypervisor counted, no more, no less
    assert.equal(q.zeroPages, job.memory_constant);
    assert.equal(q.normalPages, job.memory_normal);
    assert.equal(q.otherPages, 0);
    // data_processed counts RAM records only; the stream also carries header, device state and
    // the JSON description (the explainable offset, see README)
    assert.ok(q.bytes > job.data_processed);
    assert.ok(q.bytes - job.data_processed < 256 * 1024, `offset ${q.bytes - job.data_processed}`);
    // passes: a lower bound of the dirty syncs (setup sync + one per pass + the final ones)
    const passes = record.passes ?? [];
    assert.ok(passes.length >= 1);
    assert.ok(passes.length + 2 <= job.memory_iteration, `${passes.length} passes, ${job.memory_iteration} iterations`);
    const pages = passes.reduce((s, p) => s + p.zeroPages + p.normalPages, 0) + (record.stopAndCopy?.pages ?? 0);
    assert.equal(pages, job.memory_constant + job.memory_normal);
    // stop-and-copy starts when libvirt saw the guest suspended, and is shorter than QEMU's downtime
    const sc = record.stopAndCopy;
    assert.ok(sc);
    const suspended = eventSeconds(truth, 'Suspended Migrated');
    const scStart = parseTimestamp(sc.start);
    // tunnelled: QEMU writes into libvirtd's pipe, which forwards later (33 ms in d-p2p-tunnelled)
    const tolerance = record.mode === 'tunnelled' ? 0.05 : 0.01;
    assert.ok(Math.abs(scStart.sec + scStart.ps / 1e12 - suspended) < tolerance, `stop-and-copy ${sc.start}, suspended ${suspended}`);
    assert.ok(sc.seconds > 0 && sc.seconds * 1000 <= job.downtime, `${sc.seconds * 1000} ms vs downtime ${job.downtime} ms`);
    // the first pass starts at the first dirty sync (migration-iteration 1), to the event's ms
    const first = parseTimestamp(passes[0].start);
    assert.ok(Math.abs(first.sec + first.ps / 1e12 - eventSeconds(truth, "iteration: '1'")) < 0.01);
  });
}

test('a-p2p-src2dst: exactly 3 dirty syncs = 1 pass + setup + final (job statistics say 3)', async () => {
  const analysis = await analyzeCapture(path.join(capturesDir, 'a-p2p-src2dst.pcap.gz'), { enrichers: [new QemuStreamEnricher()] });
  assert.equal(analysis.records[0].passes?.length, 1);
});

/** Collects the source direction of the first QEMU stream (the test's own copy). */
function streamRecorder(): { detector: ProtocolDetector; chunks: Buffer[]; times: { sec: number; ps: number }[] } {
  const chunks: Buffer[] = [];
  const times: { sec: number; ps: number }[] = [];
  const detector: ProtocolDetector = {
    name: 'record-qemu',
    create(_flow: FlowInfo, firstBytes: Uint8Array, dir: Direction): StreamConsumer | undefined {
      if (chunks.length > 0 || firstBytes[0] !== 0x51) return undefined;
      const source = dir;
      return {
        data(buf, start, end, d, _o, at) {
          if (d !== source) return;
          chunks.push(Buffer.from(buf.subarray(start, end)));
          times.push(at);
        },
        gap() {
          throw new Error('the fixture stream has no gaps');
        },
        end() {},
      };
    },
  };
  return { detector, chunks, times };
}

test('random splits of a real stream decode to the same result (fast-check)', async () => {
  const rec = streamRecorder();
  await runPipeline(path.join(capturesDir, 'a-p2p-src2dst.pcap.gz'), { detectors: [rec.detector] });
  const stream = Buffer.concat(rec.chunks);
  assert.equal(stream.length, 54087277);
  const at = rec.times[0];
  const decodeWith = (sizes: number[]): QemuStreamResult => {
    const d = new QemuStreamDecoder();
    let i = 0;
    for (let pos = 0; pos < stream.length; i++) {
      const n = Math.min(sizes[i % sizes.length], stream.length - pos);
      d.push(stream, pos, pos + n, at);
      pos += n;
    }
    d.end(at);
    return d.result();
  };
  const whole = decodeWith([stream.length]);
  assert.equal(whole.complete, true);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 50 }), (sizes) => {
      assert.deepEqual(decodeWith(sizes), whole);
    }),
    { numRuns: 8 },
  );
  // a capture gap anywhere in pre-copy: decoding resumes, the stream still completes, and only
  // the pages that can fit in the lost + skipped bytes are missing
  const precopyEnd = whole.stopAndCopy!.startOffset;
  fc.assert(
    fc.property(fc.integer({ min: 300, max: precopyEnd - 200_000 }), fc.integer({ min: 1, max: 100_000 }), (gapStart, gapLength) => {
      const d = new QemuStreamDecoder();
      d.push(stream, 0, gapStart, at);
      d.gap(gapLength, at);
      for (let pos = gapStart + gapLength; pos < stream.length; pos += 1448) d.push(stream, pos, Math.min(stream.length, pos + 1448), at);
      d.end(at);
      const r = d.result();
      assert.equal(r.stopped, undefined);
      assert.equal(r.complete, true);
      assert.equal(r.bytes, stream.length);
      assert.equal(r.resyncs.length + r.gapsInsidePages, 1);
      const span = r.resyncs.length ? r.resyncs[0].resumedOffset! - gapStart : gapLength;
      assert.ok(span >= gapLength);
      assert.ok(r.pages.normal <= whole.pages.normal && r.pages.normal >= whole.pages.normal - Math.ceil(span / 4104));
      assert.ok(r.pages.zero <= whole.pages.zero && r.pages.zero >= whole.pages.zero - Math.ceil(span / 9));
      assert.deepEqual(r.stopAndCopy?.pages, whole.stopAndCopy?.pages);
    }),
    { numRuns: 10 },
  );
  // and the segment times as the capture delivered them give the same page counts
  const d = new QemuStreamDecoder();
  rec.chunks.forEach((c, i) => d.push(c, 0, c.length, rec.times[i]));
  d.end(rec.times[rec.times.length - 1]);
  assert.deepEqual(d.result().pages, whole.pages);
  assert.ok(secondsBetween(d.result().passes[0].start, d.result().stopAndCopy!.start) > 0.1);
});
