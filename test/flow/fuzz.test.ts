// Fuzz-style: real frames (the failed-migration capture) with random bytes flipped, frames cut
// short, dropped, duplicated and reordered go through the whole pipeline with a consumer on
// every flow. Nothing may throw, and every consumer must see its stream as contiguous data and
// gaps (no overlap, no splice), ended exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readCapture } from '../../src/capture/reader';
import type { PacketRecord } from '../../src/capture/types';
import { Pipeline } from '../../src/flow/pipeline';
import type { Direction, StreamConsumer } from '../../src/flow/stream-consumer';
import { fixture } from '../helpers/paths';

interface Frame { data: Uint8Array; sec: number; ps: number; wirelen: number }

async function realFrames(): Promise<Frame[]> {
  const frames: Frame[] = [];
  await readCapture(fixture('captures', 'f-fail-nobridge.pcap.gz'), {
    packet: (r) => { frames.push({ data: r.buf.slice(r.offset, r.offset + r.caplen), sec: r.sec, ps: r.ps, wirelen: r.wirelen }); },
  });
  return frames;
}

class Checker implements StreamConsumer {
  // -1 until the first call: a consumer created after a gap starts past offset 0
  next: [number, number] = [-1, -1];
  ended = 0;
  data(buf: Uint8Array, start: number, end: number, dir: Direction, streamOffset: number): void {
    assert.ok(start >= 0 && start < end && end <= buf.length, 'a non-empty range inside the buffer');
    if (this.next[dir] >= 0) assert.equal(streamOffset, this.next[dir], 'data continues the stream');
    this.next[dir] = streamOffset + (end - start);
    assert.equal(this.ended, 0, 'no data after end');
  }
  gap(dir: Direction, streamOffset: number, length: number): void {
    assert.ok(length > 0);
    if (this.next[dir] >= 0) assert.equal(streamOffset, this.next[dir], 'gap continues the stream');
    this.next[dir] = streamOffset + length;
  }
  end(): void {
    this.ended++;
  }
}

test('corrupted, cut, dropped, duplicated and reordered real frames never break the pipeline', async () => {
  const frames = await realFrames();
  assert.ok(frames.length > 1000);
  const tcpLike = frames.filter((f) => f.data[23] === 6); // IPv4 protocol byte: the 34 TCP frames
  assert.ok(tcpLike.length >= 30);
  const sample = [...tcpLike, ...frames.slice(0, 60)];
  fc.assert(
    fc.property(
      fc.array(fc.record({
        pick: fc.nat(sample.length - 1),
        flips: fc.array(fc.tuple(fc.nat(200), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        cut: fc.option(fc.nat(120)),
      }), { minLength: 1, maxLength: 120 }),
      (plan) => {
        const checkers: Checker[] = [];
        const pipeline = new Pipeline('fuzz', {
          detectors: [{ name: 'check', create: () => { const c = new Checker(); checkers.push(c); return c; } }],
        });
        let index = 0;
        for (const step of plan) {
          const f = sample[step.pick];
          const data = f.data.slice();
          for (const [at, value] of step.flips) if (at < data.length) data[at] = value;
          const caplen = step.cut === null ? data.length : Math.min(data.length, step.cut);
          const r: PacketRecord = { buf: data, offset: 0, caplen, wirelen: f.wirelen, sec: f.sec, ps: f.ps, interfaceId: 0, linkType: 1, index: ++index, fileOffset: 0 };
          pipeline.packet(r);
        }
        const result = pipeline.finish();
        assert.equal(result.stats.packets, plan.length);
        for (const c of checkers) assert.equal(c.ended, 1, 'each consumer ended exactly once');
        for (const flow of result.flows) assert.ok(flow.ended);
      },
    ),
    { numRuns: 1500 },
  );
});
