// From a decoded QEMU stream to the MigrationRecord's pass figures, and the `analyze --passes`
// table. Durations and rates are computed here, at the end, from exact instants.
import { formatTimestamp, parseTimestamp, secondsBetween } from '../../core/timestamp';
import type { PassFigures } from '../../migration/record';
import type { QemuStreamResult } from './stream-decoder';

export interface StopAndCopyFigures {
  start: string;
  seconds: number;
  bytes: number;
  pages: number;
}

/** Per pre-copy pass: start, duration (to the next pass / the stop-and-copy), pages, bytes on the
 *  wire, throughput and the dirty rate (pages re-sent in this pass ÷ the previous pass's duration). */
export function passFigures(result: QemuStreamResult, tsDigits: number): PassFigures[] {
  const out: PassFigures[] = [];
  let previousSeconds: number | undefined;
  for (const pass of result.passes) {
    const seconds = secondsBetween(pass.start, pass.end);
    const bytes = pass.endOffset - pass.startOffset;
    const pages = pass.pages.zero + pass.pages.normal + pass.pages.xbzrle + pass.pages.compressed;
    const figures: PassFigures = {
      index: pass.index,
      start: formatTimestamp(pass.start, tsDigits),
      seconds,
      zeroPages: pass.pages.zero,
      normalPages: pass.pages.normal,
      otherPages: pass.pages.xbzrle + pass.pages.compressed,
      bytes,
      throughputBps: seconds > 0 ? bytes / seconds : 0,
    };
    if (previousSeconds !== undefined && previousSeconds > 0) figures.dirtyRatePagesPerSec = pages / previousSeconds;
    out.push(figures);
    previousSeconds = seconds;
  }
  return out;
}

/** The final ram section + device state + EOF (+ VM description): the pause as seen on the wire. */
export function stopAndCopyFigures(result: QemuStreamResult, tsDigits: number): StopAndCopyFigures | undefined {
  const sc = result.stopAndCopy;
  if (!sc) return undefined;
  const end = sc.end ?? result.last ?? sc.start;
  const endOffset = sc.endOffset ?? result.decodedBytes;
  return {
    start: formatTimestamp(sc.start, tsDigits),
    seconds: secondsBetween(sc.start, end),
    bytes: endOffset - sc.startOffset,
    pages: sc.pages.zero + sc.pages.normal + sc.pages.xbzrle + sc.pages.compressed,
  };
}

/** Plain-language notes for MigrationRecord.warnings: why decoding stopped, what is missing. */
export function qemuStreamWarnings(result: QemuStreamResult): string[] {
  const notes: string[] = [];
  if (result.stopped) {
    notes.push(`QEMU stream decoded up to byte ${result.stopped.offset} of ${result.bytes}: ${result.stopped.kind}: ${result.stopped.detail}; byte and time totals cover the whole stream`);
  } else if (result.truncated) {
    notes.push(`QEMU stream: ${result.truncated}`);
  }
  if (result.resyncs.length > 0) {
    const lost = result.resyncs.reduce((sum, r) => sum + r.lostBytes + (r.skippedBytes ?? 0), 0);
    notes.push(`QEMU stream: ${result.resyncs.length} capture gap(s) outside page contents; decoding resumed at the next ram section, so pages in ${lost} bytes are missing from the counts`);
  }
  if (result.gapsInsidePages > 0) notes.push(`QEMU stream: ${result.gapsInsidePages} capture gaps fell inside page contents (${result.lostBytes} bytes); page counts are complete`);
  if (result.postcopy) notes.push('QEMU stream: postcopy was used; passes after POSTCOPY_RUN are page requests, not sweeps');
  if (!result.passesFromResends) notes.push('QEMU stream: RAM too large to track re-sent pages; passes are sweeps through RAM');
  return notes;
}

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/** The per-pass table of `analyze --passes`. Start times are relative to `origin` (the
 *  migration's start) when given. */
export function formatPassTable(passes: readonly PassFigures[], stopAndCopy?: StopAndCopyFigures, origin?: string): string {
  const base = origin ? parseTimestamp(origin) : undefined;
  const when = (instant: string): string => (base ? `+${secondsBetween(base, parseTimestamp(instant)).toFixed(3)} s` : instant);
  const header = ['pass', 'start', 'duration', 'zero pages', 'normal pages', 'other pages', 'bytes', 'throughput', 'dirty rate'];
  const rows: string[][] = passes.map((p) => [
    String(p.index),
    when(p.start),
    `${(p.seconds * 1000).toFixed(1)} ms`,
    String(p.zeroPages),
    String(p.normalPages),
    String(p.otherPages),
    human(p.bytes),
    `${human(p.throughputBps)}/s`,
    p.dirtyRatePagesPerSec === undefined ? '-' : `${Math.round(p.dirtyRatePagesPerSec)} pages/s`,
  ]);
  if (stopAndCopy) {
    rows.push([
      'stop-and-copy',
      when(stopAndCopy.start),
      `${(stopAndCopy.seconds * 1000).toFixed(1)} ms`,
      '',
      `${stopAndCopy.pages} pages`,
      '',
      human(stopAndCopy.bytes),
      stopAndCopy.seconds > 0 ? `${human(stopAndCopy.bytes / stopAndCopy.seconds)}/s` : '-',
      '',
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
