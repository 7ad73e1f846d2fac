// `live --write`: a PacketSink that copies every packet into pcapng files on the way to the
// analyzer (a tee), optionally rotating: a new file every N MB, keeping the newest K, so a long
// watch uses bounded disk. Each file is a complete pcapng (own SHB and IDBs), so files can be
// analysed one by one, or concatenated in name order into one multi-section pcapng.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CaptureProblem } from '../core/errors';
import { PcapngWriter, type PcapngInterfaceInfo, type PcapngSectionInfo } from './pcapng-writer';
import type { CaptureInterface, PacketRecord, PacketSink } from './types';

export interface RotationOptions {
  /** Start a new file before one would exceed this many bytes (0/undefined: never rotate). */
  readonly rotateBytes?: number;
  /** Keep at most this many files, deleting the oldest (0/undefined: keep all). */
  readonly maxFiles?: number;
}

/**
 * Name of the index-th file (1-based). Without rotation the name is used as given; with it the
 * index goes before the extension, zero-padded so that name order is time order:
 * watch.pcapng → watch-000001.pcapng, watch-000002.pcapng, …
 */
export function rotationFileName(base: string, index: number, rotating: boolean): string {
  if (!rotating) return base;
  const ext = path.extname(base);
  const stem = ext ? base.slice(0, -ext.length) : base;
  return `${stem}-${String(index).padStart(6, '0')}${ext || '.pcapng'}`;
}

/** Bytes an Enhanced Packet Block of `caplen` bytes takes (no options): 32 + data padded to 4. */
function epbSize(caplen: number): number {
  return 32 + ((caplen + 3) & ~3);
}

/** pcapng files written one after another, each ≤ rotateBytes (unless one packet is bigger). */
export class RotatingPcapngWriter {
  private writer: (PcapngWriter & { readonly fd: number }) | undefined;
  private readonly interfaces: PcapngInterfaceInfo[] = [];
  private fileIndex = 0;
  private bytesInFile = 0;
  private readonly kept: string[] = [];
  private readonly deleted: string[] = [];
  private totalPackets = 0;

  constructor(readonly base: string, readonly rotation: RotationOptions = {}, private readonly section: PcapngSectionInfo = {}) {}

  private get rotating(): boolean {
    return (this.rotation.rotateBytes ?? 0) > 0;
  }

  /** Files present on disk now, oldest first. */
  get files(): readonly string[] {
    return this.kept;
  }
  /** Files deleted by rotation (the oldest ones beyond maxFiles). */
  get removedFiles(): readonly string[] {
    return this.deleted;
  }
  get packets(): number {
    return this.totalPackets;
  }

  /** Declares an interface (in every file from now on); returns its id (declaration order). */
  addInterface(info: PcapngInterfaceInfo): number {
    this.interfaces.push(info);
    this.writer?.addInterface(info);
    return this.interfaces.length - 1;
  }

  writePacket(interfaceId: number, sec: number, ps: number, data: Uint8Array, wirelen: number): void {
    const size = epbSize(data.length);
    const limit = this.rotation.rotateBytes ?? 0;
    if (!this.writer || (limit > 0 && this.bytesInFile > 0 && this.bytesInFile + size > limit)) this.openNext();
    this.writer!.writePacket(interfaceId, sec, ps, data, wirelen);
    this.bytesInFile += size;
    this.totalPackets++;
  }

  /** Writes out what is buffered (call after a quiet spell so that the file on disk is current). */
  flush(): void {
    this.writer?.flush();
  }

  /** Closes the current file; a writer that never saw a packet still leaves one valid file. */
  close(): void {
    if (!this.writer) this.openNext();
    this.writer!.close();
    this.writer = undefined;
  }

  private openNext(): void {
    this.writer?.close();
    this.fileIndex++;
    const name = rotationFileName(this.base, this.fileIndex, this.rotating);
    this.writer = PcapngWriter.toFile(name, this.section);
    for (const info of this.interfaces) this.writer.addInterface(info);
    // SHB + IDBs: a few hundred bytes, counted so the limit holds for the whole file.
    this.bytesInFile = 64 + this.interfaces.length * 64;
    this.kept.push(name);
    const max = this.rotation.maxFiles ?? 0;
    while (max > 0 && this.kept.length > max) {
      const oldest = this.kept.shift()!;
      fs.rmSync(oldest, { force: true });
      this.deleted.push(oldest);
      if (this.deleted.length > 1000) this.deleted.shift(); // a long watch: remember only the recent ones
    }
  }
}

/**
 * Tee: writes each packet to the writer, then hands it on. A write failure (disk full, file
 * removed) is reported once through onWriteError and writing stops; analysis goes on.
 */
export class WritingSink implements PacketSink {
  private readonly ids: number[] = [];
  private failed = false;

  constructor(
    private readonly writer: RotatingPcapngWriter,
    private readonly next: PacketSink,
    private readonly onWriteError: (err: Error) => void,
    private readonly interfaceName?: string, // if_name for interfaces the reader left unnamed (a pcap)
  ) {}

  interface(iface: CaptureInterface): void {
    this.ids[iface.id] = this.writer.addInterface({
      linkType: iface.linkType,
      snaplen: iface.snaplen,
      tsDigits: iface.tsDigits,
      name: iface.name ?? this.interfaceName,
      description: iface.description,
    });
    this.next.interface?.(iface);
  }

  packet(record: PacketRecord): void {
    if (!this.failed) {
      try {
        this.writer.writePacket(this.ids[record.interfaceId], record.sec, record.ps, record.buf.subarray(record.offset, record.offset + record.caplen), record.wirelen);
      } catch (err) {
        this.failed = true;
        this.onWriteError(err as Error);
      }
    }
    this.next.packet(record);
  }

  problem(problem: CaptureProblem): void {
    this.next.problem?.(problem);
  }

  get writeFailed(): boolean {
    return this.failed;
  }
}
