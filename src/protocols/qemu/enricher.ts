// Plugs the QEMU stream decoder into `analyze`: its detector is offered the native data
// connection and the tunnelled bytes; for each migration it fills passes, stop-and-copy and a
// summary of the decoded stream from the stream that belongs to that migration.
import type { MigrationEnricher } from '../../migration/analyze-capture';
import type { MigrationRecord, QemuStreamSummary } from '../../migration/record';
import type { MigrationDetail } from '../../migration/timeline';
import { compareTimestamps, formatTimestamp } from '../../core/timestamp';
import { QemuMigrationStream, QemuStreamDetector } from './consumer';
import { passFigures, qemuStreamWarnings, stopAndCopyFigures } from './passes';
import type { QemuStreamResult } from './stream-decoder';

export class QemuStreamEnricher implements MigrationEnricher {
  readonly detector = new QemuStreamDetector();
  readonly detectors = [this.detector];

  enrich(record: MigrationRecord, detail: MigrationDetail): void {
    const stream = this.streamOf(detail);
    if (!stream) return;
    // One migration, one stream: forget it so that a long run over many captures stays bounded.
    const i = this.detector.streams.indexOf(stream);
    if (i >= 0) this.detector.streams.splice(i, 1);
    const result = stream.result();
    const digits = record.tsDigits;
    record.passes = passFigures(result, digits);
    const stopAndCopy = stopAndCopyFigures(result, digits);
    if (stopAndCopy) record.stopAndCopy = stopAndCopy;
    record.qemuStream = qemuStreamSummary(result, stream, digits);
    record.warnings.push(...qemuStreamWarnings(result));
    // multifd channels: same destination, opened while the main stream ran
    const until = result.last ?? stream.flow.firstSeen;
    const channels = this.detector.streams.filter(
      (s) => s.kind === 'multifd' && s.flow.server.ip === stream.flow.server.ip && compareTimestamps(s.flow.firstSeen, stream.flow.firstSeen) >= 0 && compareTimestamps(s.flow.firstSeen, until) <= 0,
    );
    if (channels.length > 0) {
      const figures = channels.map((c) => c.multifd.result());
      record.qemuStream.multifd = {
        channels: channels.length,
        pages: figures.reduce((n, f) => n + f.pages, 0),
        bytes: figures.reduce((n, f) => n + f.bytes, 0),
        compression: figures.find((f) => f.compression)?.compression,
      };
      for (const c of channels) this.detector.streams.splice(this.detector.streams.indexOf(c), 1);
      record.warnings.push(`QEMU stream: ${channels.length} multifd channel(s) carried ${record.qemuStream.multifd.pages} normal pages; passes count the main channel's pages only`);
      for (const f of figures) if (f.stopped) record.warnings.push(`QEMU multifd channel ${f.channel ?? '?'}: ${f.stopped}`);
    }
  }

  private streamOf(detail: MigrationDetail): QemuMigrationStream | undefined {
    const tunnelled = detail.tunnel?.consumer;
    if (tunnelled instanceof QemuMigrationStream) return tunnelled;
    const flow = detail.dataFlow?.flow;
    if (!flow) return undefined;
    return this.detector.streams.find((s) => s.kind === 'main' && s.flow === flow);
  }
}

export function qemuStreamSummary(result: QemuStreamResult, stream: QemuMigrationStream | undefined, digits: number): QemuStreamSummary {
  const summary: QemuStreamSummary = {
    complete: result.complete,
    bytes: result.bytes,
    decodedBytes: result.decodedBytes,
    zeroPages: result.pages.zero,
    normalPages: result.pages.normal,
    otherPages: result.pages.xbzrle + result.pages.compressed,
    sweeps: result.sweeps,
    deviceSections: result.sections.filter((s) => s.kind === 'device').length,
  };
  if (result.version !== undefined) summary.version = result.version;
  if (result.machineType !== undefined) summary.machineType = result.machineType;
  if (result.ramTotal !== undefined) summary.ramBytes = result.ramTotal;
  if (result.stopped) summary.stoppedReason = `${result.stopped.kind}: ${result.stopped.detail}`;
  else if (result.truncated) summary.stoppedReason = result.truncated;
  if (result.eofAt) summary.eof = formatTimestamp(result.eofAt, digits);
  const shut = stream?.returnPath.result().shut;
  if (shut) summary.destinationDone = { at: formatTimestamp(shut.at, digits), ok: shut.value === 0 };
  return summary;
}
