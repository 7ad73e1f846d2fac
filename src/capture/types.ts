// Contracts between capture readers (pcap, pcapng, DPMI, live) and everything downstream.
// A reader pushes PacketRecords into a PacketSink; the record object and its bytes are reused,
// valid only during the call (copy what you keep): no allocation per packet on the hot path.
import type { CaptureProblem } from '../core/errors';
import type { TimestampDigits } from '../core/timestamp';

/** 'unknown': the input matched no format (the summary then carries an 'unreadable' problem). */
export type CaptureFormat = 'pcap' | 'pcapng' | 'dpmi' | 'live' | 'unknown';

/** LINKTYPE_* values (tcpdump.org/linktypes.html) that the decoders handle. */
export const LinkType = {
  NULL: 0,
  ETHERNET: 1,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

/** A capture interface (pcapng IDB, the single pcap "interface", a DPMI measurement location). */
export interface CaptureInterface {
  readonly id: number; // index used by PacketRecord.interfaceId (unique over the whole capture)
  readonly linkType: number;
  readonly snaplen: number;
  readonly tsDigits: TimestampDigits; // resolution of this interface's timestamps
  readonly name?: string; // pcapng if_name, DPMI "mpid:nic"
  readonly description?: string;
}

/** One captured frame. Mutable and reused by the reader. */
export interface PacketRecord {
  buf: Uint8Array; // bytes of the frame are buf[offset, offset + caplen)
  offset: number;
  caplen: number;
  wirelen: number; // original length on the wire (> caplen when cut by the snaplen)
  sec: number; // timestamp: seconds …
  ps: number; // … and picoseconds (see core/timestamp.ts)
  interfaceId: number;
  linkType: number;
  index: number; // 1-based packet number in the capture (as Wireshark numbers frames)
  fileOffset: number; // byte offset of the record header in the (decompressed) input
}

export interface PacketSink {
  /** Called for each new interface before its first packet. */
  interface?(iface: CaptureInterface): void;
  packet(record: PacketRecord): void;
  /** A damaged region was found; the reader continues (resync) or stops after this. */
  problem?(problem: CaptureProblem): void;
}

export interface CaptureSummary {
  readonly file: string;
  readonly format: CaptureFormat;
  readonly packets: number;
  readonly bytesRead: number; // bytes of (decompressed) input consumed
  readonly interfaces: readonly CaptureInterface[];
  readonly problems: readonly CaptureProblem[];
  readonly comment?: string; // pcapng shb_comment, DPMI trace comment
  /** True when the reader stopped before the end of the input (truncated or unrecoverable). */
  readonly incomplete: boolean;
}
