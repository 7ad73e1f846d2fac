// Plugs the ICMP probes into `analyze`: the observer sees every echo and ARP/RARP frame; each
// migration gets the downtime figures of its window (remote connect start → cleanup end).
// Figures depend on replies after the migration (RTT after, "never answered again"), so records
// handed out before the end of the capture are completed again when the capture ends.
import { parseTimestamp, type Timestamp } from '../../core/timestamp';
import type { DecodedPacket } from '../../decode/packet';
import type { PacketObserver } from '../../flow/pipeline';
import type { MigrationEnricher } from '../../migration/analyze-capture';
import type { MigrationRecord } from '../../migration/record';
import { ProbeObserver } from './observer';
import { ProbeTracker, type DowntimeOptions } from './probes';

export interface ProbeOptions {
  probeTarget?: string;
  probeIntervalMs?: number;
}

export class ProbeEnricher implements MigrationEnricher, PacketObserver {
  private probes = new ProbeObserver();
  private captureEnded = false;
  private last?: Timestamp;
  private readonly early: MigrationRecord[] = []; // enriched before the capture ended
  readonly observers = [this];

  constructor(private readonly options: ProbeOptions = {}) {}

  packet(p: DecodedPacket): void {
    if (this.captureEnded) this.nextCapture();
    this.probes.packet(p);
  }

  end(at: Timestamp | undefined): void {
    this.captureEnded = true;
    this.last = at;
    for (const record of this.early.splice(0)) this.fill(record);
  }

  enrich(record: MigrationRecord): void {
    this.fill(record);
    if (!this.captureEnded) this.early.push(record);
  }

  get tracker(): ProbeTracker {
    return this.probes.tracker;
  }

  private nextCapture(): void {
    this.probes = new ProbeObserver();
    this.captureEnded = false;
    this.last = undefined;
    this.early.length = 0;
  }

  private fill(record: MigrationRecord): void {
    const start = parseTimestamp(record.start);
    const end = record.end ? parseTimestamp(record.end) : this.last;
    if (!end) return;
    const options: DowntimeOptions = { tsDigits: record.tsDigits };
    if (this.options.probeTarget !== undefined) options.target = this.options.probeTarget;
    if (this.options.probeIntervalMs !== undefined) options.intervalMs = this.options.probeIntervalMs;
    const figures = this.tracker.downtime({ start, end }, options);
    if (!figures) return;
    record.downtime = figures;
    record.warnings = record.warnings.filter((w) => !w.startsWith('probes: '));
    if (!figures.repliesVisible) record.warnings.push(`probes: the capture shows no echo reply from ${figures.probeTarget} at all (capture point misses one direction?): downtime not computable`);
    if (figures.guestUnreachableAfter) record.warnings.push(`probes: ${figures.probeTarget} never answered again after the migration`);
  }
}
