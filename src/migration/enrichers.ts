// The figures that come from other decoders than libvirt's — QEMU stream passes and
// stop-and-copy, ICMP-probe downtime, DPMI capmarker experiment/run markers — plug into analyze as MigrationEnrichers (see
// analyze-capture.ts). This is the one place that lists them.
import type { MigrationEnricher } from './analyze-capture';
import { ProbeEnricher, type ProbeOptions } from '../protocols/icmp/enricher';
import { QemuStreamEnricher } from '../protocols/qemu/enricher';
import { DpmiMarkerEnricher } from '../protocols/dpmi-marker';

export function defaultEnrichers(probes: ProbeOptions = {}): MigrationEnricher[] {
  return [new QemuStreamEnricher(), new ProbeEnricher(probes), new DpmiMarkerEnricher()];
}
