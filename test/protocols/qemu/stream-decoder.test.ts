import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { QemuStreamDecoder, type QemuStreamResult } from '../../../src/protocols/qemu/stream-decoder';
import { ReturnPathDecoder, QemuStreamDetector } from '../../../src/protocols/qemu/consumer';
import { passFigures, stopAndCopyFigures, formatPassTable } from '../../../src/protocols/qemu/passes';
import { currentFormatStream, legacyFormatStream, StreamBuilder, RAM_ID, BLOCKS, TEST_PAGE_SIZE, type ExpectedStream } from './stream-builder';
import type { FlowInfo } from '../../../src/flow/stream-consumer';

const T0 = { sec: 1000, ps: 0 };

function decode(bytes: Uint8Array, cuts: number[] = []): QemuStreamResult {
  const d = new QemuStreamDecoder({ pageSize: TEST_PAGE_SIZE });
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    // a fresh copy per chunk: the decoder must not keep references to pushed bytes
    const chunk = Uint8Array.from(bytes.subarray(from, cut));
    d.push(chunk, 0, chunk.length, T0);
    chunk.fill(0xee);
    from = cut;
  }
  d.end(T0);
  return d.result();
}

function checkExpected(r: QemuStreamResult, e: ExpectedStream, total: number): void {
  assert.equal(r.stopped, undefined, r.stopped?.detail);
  assert.equal(r.truncated, undefined);
  assert.equal(r.complete, true);
  assert.equal(r.bytes, total);
  assert.equal(r.decodedBytes, total);
  assert.equal(r.footers, e.footers);
  assert.deepEqual(r.pages, e.pages);
  assert.deepEqual(r.passes.map((p) => p.pages), e.passPages);
  assert.deepEqual(r.stopAndCopy?.pages, e.stopAndCopyPages);
  const devices = r.sections.filter((s) => s.kind === 'device');
  assert.deepEqual(devices.map((s) => s.idstr), e.devices);
  assert.deepEqual(devices.map((s) => s.payloadBytes), e.devicePayloads);
  assert.deepEqual(r.ramBlocks, BLOCKS.map(([name, length]) => ({ name, length })));
  assert.equal(r.ramTotal, BLOCKS.reduce((s, [, l]) => s + l, 0));
  // pass and stop-and-copy byte spans tile the RAM part of the stream
  for (let i = 1; i < r.passes.length; i++) assert.equal(r.passes[i].startOffset, r.passes[i - 1].endOffset);
  assert.equal(r.passes[r.passes.length - 1].endOffset, r.stopAndCopy?.startOffset);
}

for (const [name, make] of [['7.2 format', currentFormatStream], ['2014 format', legacyFormatStream]] as const) {
  test(`${name}: every record type decodes to the counts written`, () => {
    const { bytes, expected } = make();
    const r = decode(bytes);
    checkExpected(r, expected, bytes.length);
  });

  test(`${name}: split at every byte boundary decodes identically`, () => {
    const { bytes, expected } = make();
    const whole = decode(bytes);
    for (let cut = 1; cut < bytes.length; cut++) {
      const r = decode(bytes, [cut]);
      assert.deepEqual(r, whole, `split at ${cut}`);
    }
    checkExpected(decode(bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)), expected, bytes.length);
  });
}

test('7.2 format: header fields, commands, VM description', () => {
  const r = decode(currentFormatStream().bytes);
  assert.equal(r.version, 3);
  assert.equal(r.machineType, 'pc-i440fx-7.2');
  assert.deepEqual(r.commands, ['OPEN_RETURN_PATH', 'PING']);
  assert.deepEqual(r.vmDescription?.devices, 2);
  assert.equal(r.vmDescription?.pageSize, TEST_PAGE_SIZE);
  assert.equal(r.records.part, 3);
  assert.equal(r.records.end, 1);
  assert.equal(r.records.full, 2);
  assert.equal(r.records.eos, 5);
  assert.equal(r.records.footer, 7);
});

test('random splits (fast-check) decode like one push', () => {
  const { bytes } = currentFormatStream();
  const whole = decode(bytes);
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 }), (cuts) => {
      assert.deepEqual(decode(bytes, cuts.sort((a, b) => a - b)), whole);
    }),
    { numRuns: 200 },
  );
});

test('pass timing: passes start at their first section, dirty rate uses the previous pass', () => {
  const { bytes } = currentFormatStream();
  const d = new QemuStreamDecoder({ pageSize: TEST_PAGE_SIZE });
  // one byte per millisecond
  for (let i = 0; i < bytes.length; i++) d.push(bytes, i, i + 1, { sec: 1000, ps: i * 1_000_000_000 });
  d.end({ sec: 1000, ps: bytes.length * 1_000_000_000 });
  const r = d.result();
  const passes = passFigures(r, 9);
  assert.equal(passes.length, 2);
  assert.equal(passes[0].bytes, r.passes[0].endOffset - r.passes[0].startOffset);
  assert.ok(Math.abs(passes[0].seconds - passes[0].bytes / 1000) < 1e-9);
  assert.ok(Math.abs(passes[0].throughputBps - 1000) < 1e-6);
  assert.equal(passes[0].dirtyRatePagesPerSec, undefined);
  assert.ok(Math.abs((passes[1].dirtyRatePagesPerSec ?? 0) - 2 / passes[0].seconds) < 1e-9);
  assert.equal(passes[0].otherPages, 2);
  const sc = stopAndCopyFigures(r, 9);
  assert.ok(sc);
  assert.equal(sc.bytes, bytes.length - (r.stopAndCopy?.startOffset ?? 0));
  assert.equal(sc.pages, 2);
  const table = formatPassTable(passes, sc, '1000');
  assert.match(table, /^pass\s+start/);
  assert.match(table, /stop-and-copy\s+\+\d/);
  assert.equal(table.trim().split('\n').length, 4);
});

test('a gap inside page contents costs nothing; a gap in a header stops decoding but keeps totals', () => {
  const { bytes, expected } = currentFormatStream();
  // the first normal page's contents start after its header: find them via a decoder run
  const b = new StreamBuilder();
  b.header().configuration('pc-i440fx-7.2').command(1).command(2, [0, 0, 0, 1]);
  b.sectionStart(0x01, RAM_ID, 'ram').memSize(BLOCKS).eos().footer(RAM_ID);
  b.sectionPart(0x02, RAM_ID).be64(0x08).str8('pc.ram');
  const pageStart = b.build().length;
  const d = new QemuStreamDecoder({ pageSize: TEST_PAGE_SIZE });
  d.push(bytes, 0, pageStart + 100, T0);
  d.gap(500, T0);
  d.push(bytes, pageStart + 600, bytes.length, T0);
  d.end(T0);
  const r = d.result();
  assert.equal(r.stopped, undefined);
  assert.equal(r.complete, true);
  assert.deepEqual(r.pages, expected.pages);
  assert.equal(r.gapsInsidePages, 1);
  assert.equal(r.lostBytes, 500);
  assert.equal(r.bytes, bytes.length);

  const e = new QemuStreamDecoder({ pageSize: TEST_PAGE_SIZE });
  e.push(bytes, 0, 20, T0);
  e.gap(10, T0);
  e.push(bytes, 30, bytes.length, T0);
  e.end(T0);
  const s = e.result();
  assert.equal(s.stopped?.kind, 'gap');
  assert.equal(s.stopped?.offset, 8); // decoded up to the configuration record the gap cut
  assert.equal(s.complete, false);
  assert.equal(s.bytes, bytes.length);
});

test('undecodable streams say why and how far they got', () => {
  const notQemu = decode(Uint8Array.from(Buffer.from('GET / HTTP/1.1\r\n\r\n')));
  assert.equal(notQemu.stopped?.kind, 'unsupported');
  assert.match(notQemu.stopped?.detail ?? '', /not a QEMU migration stream/);

  const block = new StreamBuilder().header().sectionStart(0x01, 1, 'block', 0, 1).filler(100).build();
  const r = decode(block);
  assert.equal(r.stopped?.kind, 'unsupported');
  assert.match(r.stopped?.detail ?? '', /"block"/);
  assert.equal(r.bytes, block.length);

  const badFlags = new StreamBuilder().header().sectionStart(0x01, 3, 'ram').memSize(BLOCKS).eos().sectionPart(0x02, 3).be64(0x0a).build();
  const bad = decode(badFlags);
  assert.equal(bad.stopped?.kind, 'corrupt');
  assert.match(bad.stopped?.detail ?? '', /flags 0xa/);

  const { bytes } = currentFormatStream();
  const cut = decode(bytes.subarray(0, bytes.length - 500));
  assert.equal(cut.complete, false);
  assert.match(cut.truncated ?? '', /before the EOF record/);
  assert.ok(cut.passes.length === 2);
});

test('return path: PONG and SHUT across splits', () => {
  const msg = Uint8Array.from([0, 2, 0, 4, 0, 0, 0, 1, 0, 1, 0, 4, 0, 0, 0, 0]);
  for (let cut = 0; cut <= msg.length; cut++) {
    const rp = new ReturnPathDecoder();
    rp.push(msg, 0, cut, T0);
    rp.push(msg, cut, msg.length, { sec: 1001, ps: 0 });
    const r = rp.result();
    assert.equal(r.pongs, 1);
    assert.equal(r.messages, 2);
    assert.equal(r.shut?.value, 0);
    assert.equal(r.undecodable, undefined);
  }
});

test('detector: QEVM main connection and multifd channels, nothing else', () => {
  const flow: FlowInfo = { id: 1, client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port: 49152 }, firstSeen: T0, firstPacket: 1, handshakeSeen: true };
  const detector = new QemuStreamDetector();
  assert.ok(detector.create(flow, Uint8Array.from([0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3, 7]), 0));
  assert.ok(detector.create(flow, Uint8Array.from([0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1]), 0));
  assert.equal(detector.create(flow, Uint8Array.from([0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 9]), 0), undefined);
  assert.equal(detector.create(flow, Uint8Array.from(Buffer.from('SSH-2.0-OpenSSH')), 0), undefined);
  assert.deepEqual(detector.streams.map((s) => s.kind), ['main', 'multifd']);
});

/** Pre-copy of many sections, so that a gap leaves later ram sections to resume at. */
function manySections(footers: boolean): { bytes: Uint8Array; partOffsets: number[] } {
  const b = new StreamBuilder();
  const partOffsets: number[] = [];
  b.header();
  if (footers) b.configuration('pc-q35-7.2');
  b.sectionStart(0x01, RAM_ID, 'ram').memSize(BLOCKS).eos();
  if (footers) b.footer(RAM_ID);
  for (let part = 0; part < 8; part++) {
    partOffsets.push(b.build().length);
    b.sectionPart(0x02, RAM_ID);
    for (let page = 0; page < 4; page++) {
      const address = (part * 4 + page) * TEST_PAGE_SIZE;
      if (page % 2 === 0) b.normalPage('pc.ram', address);
      else b.zeroPage('pc.ram', address);
    }
    b.eos();
    if (footers) b.footer(RAM_ID);
  }
  partOffsets.push(b.build().length);
  b.sectionPart(0x03, RAM_ID).zeroPage('pc.ram', 0).eos();
  if (footers) b.footer(RAM_ID);
  b.sectionStart(0x04, 9, 'timer', 0, 2).filler(24, 0x11);
  if (footers) b.footer(9);
  b.bytes(0x00);
  return { bytes: b.build(), partOffsets };
}

for (const footers of [true, false]) {
  test(`gap outside page contents (${footers ? 'with' : 'without'} footers): decoding resumes at the next ram section`, () => {
    const { bytes, partOffsets } = manySections(footers);
    // lose the bytes from inside section 2's header to the middle of section 4
    const gapStart = partOffsets[2] + 2;
    const gapEnd = partOffsets[4] + 20;
    const runs: QemuStreamResult[] = [];
    for (let cut = gapEnd; cut <= bytes.length; cut += 7) {
      const d = new QemuStreamDecoder({ pageSize: TEST_PAGE_SIZE });
      d.push(bytes, 0, gapStart, T0);
      d.gap(gapEnd - gapStart, T0);
      d.push(bytes, gapEnd, cut, T0);
      d.push(bytes, cut, bytes.length, T0);
      d.end(T0);
      runs.push(d.result());
    }
    for (const r of runs) assert.deepEqual(r, runs[0]);
    const r = runs[0];
    assert.equal(r.stopped, undefined, r.stopped?.detail);
    assert.equal(r.complete, true);
    assert.equal(r.resyncs.length, 1);
    assert.equal(r.resyncs[0].gapOffset, gapStart);
    assert.equal(r.resyncs[0].lostBytes, gapEnd - gapStart);
    assert.equal(r.resyncs[0].resumedOffset, partOffsets[5]);
    assert.equal(r.resyncs[0].skippedBytes, partOffsets[5] - gapEnd);
    // sections 0, 1 and 5..7 were decoded: 5 × (2 normal + 2 zero), + the END's zero page
    assert.deepEqual(r.pages, { zero: 11, normal: 10, xbzrle: 0, compressed: 0 });
    assert.equal(r.bytes, bytes.length);
  });
}

test('a gap after the stop-and-copy began cannot be resumed: decoding stops there', () => {
  const { bytes, partOffsets } = manySections(true);
  const d = new QemuStreamDecoder({ pageSize: TEST_PAGE_SIZE });
  const gapStart = partOffsets[8] + 8; // inside the first page record of the ram END
  d.push(bytes, 0, gapStart, T0);
  d.gap(10, T0);
  d.push(bytes, gapStart + 10, bytes.length, T0);
  d.end(T0);
  const r = d.result();
  assert.equal(r.stopped?.kind, 'gap');
  assert.equal(r.stopped?.offset, partOffsets[8] + 5);
  assert.equal(r.complete, false);
  assert.equal(r.bytes, bytes.length);
  assert.ok(r.stopAndCopy);

  // cut inside the END header itself: still pre-copy as far as the decoder knows, so it searches
  // for another ram section, finds none, and says so at the end
  const e = new QemuStreamDecoder({ pageSize: TEST_PAGE_SIZE });
  e.push(bytes, 0, partOffsets[8] + 3, T0);
  e.gap(10, T0);
  e.push(bytes, partOffsets[8] + 13, bytes.length, T0);
  e.end(T0);
  const s = e.result();
  assert.equal(s.complete, false);
  assert.match(s.truncated ?? '', /search for the next ram section/);
  assert.deepEqual(s.resyncs.map((x) => x.resumedOffset), [undefined]);
});
