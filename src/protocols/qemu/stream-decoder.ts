// Incremental decoder of one QEMU migration stream (source → destination bytes), fed in order
// with gaps. It parses record headers and counts page records, skipping page contents by
// counting (never copying), so per-page work is O(1) without allocation. Input comes from TCP
// reassembly (QemuMigrationStream) or from libvirt STREAM messages when tunnelled.
import type { ProblemKind } from '../../core/errors';
import type { Timestamp } from '../../core/timestamp';
import {
  ENCODING_FLAG_XBZRLE,
  MIG_COMMANDS,
  MigCommand,
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
  QEMU_VM_FILE_VERSION_COMPAT,
  RAM_SECTION_IDSTR,
  RamFlag,
  RecordType,
} from './format';

export interface QemuSection {
  id: number;
  idstr: string;
  instance: number;
  version: number;
  /** 'live' sections (START/PART/END, e.g. ram) or 'device' (one FULL record). */
  kind: 'live' | 'device';
  payloadBytes: number; // bytes of payload (for devices: the VMState dump)
}

export interface QemuRamBlock {
  name: string;
  length?: number; // used_length from MEM_SIZE (absent for blocks first seen in page records)
}

/** Page counters of one span of the stream (a pass, the stop-and-copy, or the whole stream). */
export interface PageCounts {
  zero: number;
  normal: number;
  xbzrle: number;
  compressed: number;
}

/** One inferred dirty-sync pass: the pages sent between two dirty-bitmap syncs. QEMU clears a
 *  page's dirty bit when sending it and sets bits only at a sync, so a page sent twice proves a
 *  sync between the two sends; syncs happen only between ram sections. The passes are the fewest
 *  such cuts (each placed at the latest possible section), so they are a lower bound. */
export interface QemuPass {
  index: number; // 1-based
  start: Timestamp; // carrying segment of the pass's first page record
  startOffset: number; // stream offset of that record
  end: Timestamp; // start of the next pass or of the stop-and-copy, else the last byte decoded
  endOffset: number;
  pages: PageCounts;
}

export interface QemuStopAndCopy {
  start: Timestamp; // the ram SECTION_END record: the VM is paused by now
  startOffset: number;
  end?: Timestamp; // last byte of the EOF (+ VMDESCRIPTION when sent)
  endOffset?: number;
  pages: PageCounts;
  ramBytes: number; // bytes of the ram SECTION_END record(s)
  deviceSections: number;
  deviceBytes: number; // FULL records
}

export interface QemuResync {
  gapOffset: number; // stream offset where bytes went missing
  lostBytes: number;
  resumedOffset?: number; // offset of the section header where decoding resumed
  skippedBytes?: number; // bytes received but passed over while searching
}

export interface QemuDecodeStop {
  kind: ProblemKind;
  detail: string;
  offset: number; // stream offset where decoding stopped
  at: Timestamp;
}

export interface QemuStreamResult {
  /** True once the EOF record was decoded: the source sent the whole device state. */
  complete: boolean;
  /** Why decoding stopped before the end (undecodable content, gap, corrupt record); totals stay valid. */
  stopped?: QemuDecodeStop;
  /** The stream ended (FIN/RST/end of capture) before EOF, while decoding was still possible. */
  truncated?: string;
  version?: number;
  machineType?: string;
  capabilities: string[];
  footers: boolean; // sections end with a 0x7e footer (QEMU ≥ 2.4 machine types)
  bytes: number; // all bytes delivered (decoded or not)
  decodedBytes: number; // bytes the decoder got through
  lostBytes: number; // announced gaps
  gapsInsidePages: number; // gaps that fell inside page contents (decoding went on)
  /** Gaps elsewhere in pre-copy: decoding resumed at the next ram section header (EOS + footer +
   *  PART/END anchor); pages inside the skipped bytes are missing from the counts. */
  resyncs: QemuResync[];
  first?: Timestamp;
  last?: Timestamp;
  sections: QemuSection[];
  ramBlocks: QemuRamBlock[];
  ramTotal?: number; // MEM_SIZE total
  records: { start: number; part: number; end: number; full: number; eos: number; footer: number; commands: number; multifdFlush: number };
  commands: string[]; // names in order (bounded)
  pages: PageCounts;
  passes: QemuPass[];
  /** Times the page order wrapped back to a lower block/offset during pre-copy (+1 for the
   *  first sweep): sweeps through RAM, which are not the same as dirty syncs. */
  sweeps: number;
  /** Passes were inferred from re-sent pages (false: RAM too large to track, sweeps used). */
  passesFromResends: boolean;
  stopAndCopy?: QemuStopAndCopy;
  eofAt?: Timestamp;
  postcopy: boolean;
  vmDescription?: { bytes: number; devices?: number; pageSize?: number };
}

export interface QemuDecoderOptions {
  pageSize?: number; // TARGET_PAGE_SIZE, 4096 on x86 (the VMDESCRIPTION's page_size comes too late)
  maxDeviceStateBytes?: number; // bound on one FULL record buffered while looking for its end
  maxVmDescriptionBytes?: number; // bound on the JSON kept for parsing
}

// Parser modes.
const M_HEADER = 0;
const M_TOP = 1;
const M_RAM = 2;
const M_MEMSIZE = 3;
const M_DEVICE = 4; // FULL payload: buffered until its end is found
const M_VMDESC = 5; // JSON collected
const M_RESYNC = 6; // after a gap: looking for the next ram section (reference §7)
const M_STOPPED = 7;
const M_DONE = 8;
const MAX_RESYNCS = 1000;

const STAGE_SIZE = 1024; // larger than any header item (≤ 1+4+1+255+4+4)
const MAX_INLINE_COMMAND = 64;
const NEED_MORE = 0;
const FAILED = -1;

const PAGE_KINDS = RamFlag.ZERO | RamFlag.PAGE | RamFlag.XBZRLE | RamFlag.COMPRESS_PAGE;
const BLOCK_POSITION_SCALE = 2 ** 42; // position key = block order × scale + offset (offsets < 4 TiB)

function be32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}
function be16(b: Uint8Array, p: number): number {
  return (b[p] << 8) | b[p + 1];
}
function latin1(b: Uint8Array, p: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(b[p + i]);
  return s;
}
function isPrintableName(b: Uint8Array, p: number, len: number): boolean {
  if (len === 0) return false;
  for (let i = 0; i < len; i++) if (b[p + i] < 0x20 || b[p + i] > 0x7e) return false;
  return true;
}

function emptyCounts(): PageCounts {
  return { zero: 0, normal: 0, xbzrle: 0, compressed: 0 };
}

interface BlockState {
  name: string;
  nameBytes: Uint8Array;
  length?: number;
  /** Per page frame: the ram record (section) counter when the page was last sent, -1 never. */
  lastSentIn?: Int32Array;
}

/** Bound on the per-page bookkeeping (4 bytes a page): 2^24 pages = 64 GiB of guest RAM. */
const MAX_TRACKED_PAGES = 1 << 24;

export class QemuStreamDecoder {
  private readonly pageSize: number;
  private readonly flagMask: number;
  private readonly maxDeviceStateBytes: number;
  private readonly maxVmDescriptionBytes: number;

  private mode = M_HEADER;
  private offset = 0; // stream offset of the next byte the parser has not consumed
  private skip = 0; // page content bytes still to pass over
  private readonly stage = new Uint8Array(STAGE_SIZE);
  private stageLen = 0;
  private stageAt: Timestamp = { sec: 0, ps: 0 };
  private curAt: Timestamp = { sec: 0, ps: 0 }; // time of the record being parsed
  private curOffset = 0; // its stream offset

  // results
  private bytes = 0;
  private lostBytes = 0;
  private gapsInsidePages = 0;
  private first?: Timestamp;
  private last?: Timestamp;
  private version?: number;
  private machineType?: string;
  private readonly capabilities: string[] = [];
  private footers = false;
  private readonly sections = new Map<number, QemuSection>();
  private readonly blocks: BlockState[] = [];
  private ramTotal?: number;
  private memSizeSum = 0;
  private readonly records = { start: 0, part: 0, end: 0, full: 0, eos: 0, footer: 0, commands: 0, multifdFlush: 0 };
  private readonly commands: string[] = [];
  private readonly pages = emptyCounts();
  private readonly passes: QemuPass[] = [];
  private stopAndCopy?: QemuStopAndCopy;
  private eofAt?: Timestamp;
  private complete = false;
  private stopped?: QemuDecodeStop;
  private truncated?: string;
  private postcopy = false;
  private vmDescription?: { bytes: number; devices?: number; pageSize?: number };

  // parser state
  private inConfiguration = false;
  private section?: QemuSection; // section whose payload is being parsed
  private sectionPhase = 0; // record type that opened the current ram payload
  private ramSectionId = -1;
  private currentBlock = -1; // block of CONTINUE records (persists across sections)
  private lastPosition = -1; // block order × scale + offset of the last page in the current pass
  private pass?: QemuPass;
  private pageCounts: PageCounts = this.pages; // where the next pages are counted besides the totals
  private sweeps = 0;
  private trackedPages = 0;
  private trackResends = true;
  private ramRecordIndex = 0; // counter of ram START/PART/END records
  private ramRecordAt: Timestamp = { sec: 0, ps: 0 }; // … and where the current one began
  private ramRecordOffset = 0;
  private readonly ramRecordCounts = emptyCounts(); // pages of the current ram record
  private cutIndex = 0; // ram record index where the open pass began
  private firstDeviceOffset = -1; // first FULL record of the stop-and-copy
  private deviceBuf = new Uint8Array(0);
  private deviceLen = 0;
  private deviceSearchFrom = 0;
  private deviceStartOffset = 0;
  private readonly resyncs: QemuResync[] = [];
  private recovering = false; // since the last resync no EOS was decoded: a failure resyncs again
  private blockUncertain = false; // CONTINUE records after a resync may belong to another block
  private readonly resyncTail = new Uint8Array(64);
  private resyncTailLen = 0;
  private vmDescRemaining = 0;
  private vmDescBuf?: Uint8Array;
  private vmDescLen = 0;

  constructor(options: QemuDecoderOptions = {}) {
    this.pageSize = options.pageSize ?? 4096;
    this.flagMask = this.pageSize - 1;
    this.maxDeviceStateBytes = options.maxDeviceStateBytes ?? 16 * 1024 * 1024;
    this.maxVmDescriptionBytes = options.maxVmDescriptionBytes ?? 4 * 1024 * 1024;
  }

  /** Bytes buf[start, end) follow the previous ones; `at` is the time of the carrying segment. */
  push(buf: Uint8Array, start: number, end: number, at: Timestamp): void {
    if (end <= start) return;
    this.bytes += end - start;
    if (this.first === undefined) this.first = at;
    this.last = at;
    this.feed(buf, start, end, at);
  }

  /** `length` bytes of the stream will never arrive. Inside page contents this costs only those
   *  pages' bytes; anywhere else the decoder cannot find the next record and stops. */
  gap(length: number, at: Timestamp): void {
    if (length <= 0) return;
    this.lostBytes += length;
    this.bytes += length;
    if (this.first === undefined) this.first = at;
    this.last = at;
    if (this.mode >= M_STOPPED) return;
    if (this.stageLen === 0 && this.skip >= length && this.mode === M_RAM) {
      this.skip -= length;
      this.offset += length;
      this.gapsInsidePages++;
      return;
    }
    if (this.mode === M_VMDESC && length <= this.vmDescRemaining) {
      this.vmDescRemaining -= length;
      this.offset += length;
      this.vmDescBuf = undefined; // the JSON is incomplete: not parsed
      this.gapsInsidePages++;
      if (this.vmDescRemaining === 0) this.mode = M_TOP;
      return;
    }
    const gapOffset = this.offset + this.stageLen;
    if (this.mode === M_RESYNC) {
      this.resyncs[this.resyncs.length - 1].lostBytes += length;
      this.offset += length;
      this.resyncTailLen = 0;
      return;
    }
    if (this.ramSectionId >= 0 && !this.stopAndCopy && this.resyncs.length < MAX_RESYNCS && (this.mode === M_RAM || this.mode === M_TOP)) {
      this.resyncs.push({ gapOffset, lostBytes: length });
      this.offset = gapOffset + length;
      this.enterResync();
      return;
    }
    this.stop('gap', `${length} bytes missing from the capture at stream offset ${gapOffset}`, at);
  }

  /** The stream ended (FIN, RST, end of capture). */
  end(at: Timestamp): void {
    if (this.mode === M_DEVICE) this.endInsideDevice(at);
    this.closePass(at, this.offset);
    if (this.mode < M_STOPPED && !(this.mode === M_TOP && this.complete && this.stageLen === 0)) {
      const where = this.skip > 0 ? 'inside a page' : this.stageLen > 0 ? 'inside a record header' : `in ${modeName(this.mode)}`;
      if (!this.complete) this.truncated = `stream ended ${where} at offset ${this.offset + this.stageLen}, before the EOF record`;
      else this.truncated = `stream ended ${where} after the EOF record`;
    }
    if (this.mode < M_STOPPED) this.mode = M_DONE;
  }

  result(): QemuStreamResult {
    const passes = this.passes.map((p) => ({ ...p, pages: { ...p.pages } }));
    if (this.pass && passes.length > 0 && this.pass === this.passes[this.passes.length - 1] && this.last) {
      // an open pass ends at the last byte seen so far
      const open = passes[passes.length - 1];
      open.end = this.last;
      open.endOffset = this.offset;
    }
    return {
      complete: this.complete,
      stopped: this.stopped,
      truncated: this.truncated,
      version: this.version,
      machineType: this.machineType,
      capabilities: [...this.capabilities],
      footers: this.footers,
      bytes: this.bytes,
      decodedBytes: this.stopped ? this.stopped.offset : this.offset,
      lostBytes: this.lostBytes,
      gapsInsidePages: this.gapsInsidePages,
      resyncs: this.resyncs.map((r) => ({ ...r })),
      first: this.first,
      last: this.last,
      sections: [...this.sections.values()].map((s) => ({ ...s })),
      ramBlocks: this.blocks.map((b) => (b.length === undefined ? { name: b.name } : { name: b.name, length: b.length })),
      ramTotal: this.ramTotal,
      records: { ...this.records },
      commands: [...this.commands],
      pages: { ...this.pages },
      passes,
      sweeps: this.sweeps,
      passesFromResends: this.trackResends,
      stopAndCopy: this.stopAndCopy ? { ...this.stopAndCopy, pages: { ...this.stopAndCopy.pages } } : undefined,
      eofAt: this.eofAt,
      postcopy: this.postcopy,
      vmDescription: this.vmDescription ? { ...this.vmDescription } : undefined,
    };
  }

  // ---------------------------------------------------------------- byte loop

  private feed(buf: Uint8Array, start: number, end: number, at: Timestamp): void {
    let pos = start;
    while (pos < end && this.mode < M_STOPPED) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, end - pos);
        this.skip -= n;
        pos += n;
        this.offset += n;
        continue;
      }
      if (this.mode === M_DEVICE) {
        pos = this.feedDevice(buf, pos, end, at);
        continue;
      }
      if (this.mode === M_VMDESC) {
        pos = this.feedVmDescription(buf, pos, end, at);
        continue;
      }
      if (this.mode === M_RESYNC) {
        pos = this.scanForRamSection(buf, pos, end, at);
        continue;
      }
      if (this.stageLen > 0) {
        const had = this.stageLen;
        const k = Math.min(STAGE_SIZE - had, end - pos);
        const stage = this.stage;
        for (let i = 0; i < k; i++) stage[had + i] = buf[pos + i];
        this.curAt = this.stageAt;
        this.curOffset = this.offset;
        const used = this.step(stage, 0, had + k);
        if (used === FAILED) {
          if (this.mode !== M_RESYNC) return;
          this.offset += had; // the staged bytes are dropped; scanning goes on from pos
          continue;
        }
        if (used === NEED_MORE) {
          if (had + k >= STAGE_SIZE) {
            this.stop('corrupt', `a record header longer than ${STAGE_SIZE} bytes at stream offset ${this.offset}`, this.stageAt);
            return;
          }
          this.stageLen = had + k;
          pos += k;
          continue;
        }
        this.stageLen = 0;
        this.offset += used;
        pos += used - had;
        continue;
      }
      this.curAt = at;
      this.curOffset = this.offset;
      const used = this.step(buf, pos, end);
      if (used > 0) {
        pos += used;
        this.offset += used;
      } else if (used === NEED_MORE) {
        const n = end - pos;
        for (let i = 0; i < n; i++) this.stage[i] = buf[pos + i];
        this.stageLen = n;
        this.stageAt = at;
        pos = end;
      } else if (this.mode !== M_RESYNC) {
        return;
      }
    }
  }

  /** Parse one item at b[p, end): bytes consumed, NEED_MORE, or FAILED (decoding stopped). */
  private step(b: Uint8Array, p: number, end: number): number {
    switch (this.mode) {
      case M_RAM:
        return this.stepRam(b, p, end);
      case M_TOP:
        return this.stepTop(b, p, end);
      case M_MEMSIZE:
        return this.stepMemSize(b, p, end);
      case M_HEADER:
        return this.stepHeader(b, p, end);
      default:
        return FAILED;
    }
  }

  private stepHeader(b: Uint8Array, p: number, end: number): number {
    if (end - p < 8) return NEED_MORE;
    const magic = be32(b, p);
    if (magic !== QEMU_VM_FILE_MAGIC) {
      return this.fail('unsupported', `not a QEMU migration stream (first word 0x${magic.toString(16).padStart(8, '0')}, expected "QEVM")`);
    }
    const version = be32(b, p + 4);
    if (version !== QEMU_VM_FILE_VERSION && version !== QEMU_VM_FILE_VERSION_COMPAT) {
      return this.fail('unsupported', `QEMU stream version ${version} (this decoder reads 2 and 3)`);
    }
    this.version = version;
    this.mode = M_TOP;
    return 8;
  }

  private stepTop(b: Uint8Array, p: number, end: number): number {
    const type = b[p];
    if (this.complete && type !== RecordType.VMDESCRIPTION) {
      return this.fail('protocol', `record type 0x${type.toString(16)} after the EOF record`);
    }
    if (this.inConfiguration && type !== RecordType.SUBSECTION) this.inConfiguration = false;
    switch (type) {
      case RecordType.SECTION_START:
      case RecordType.SECTION_FULL: {
        if (end - p < 6) return NEED_MORE;
        const len = b[p + 5];
        const need = 6 + len + 8;
        if (end - p < need) return NEED_MORE;
        const id = be32(b, p + 1);
        const idstr = latin1(b, p + 6, len);
        const instance = be32(b, p + 6 + len);
        const version = be32(b, p + 10 + len);
        const section: QemuSection = { id, idstr, instance, version, kind: type === RecordType.SECTION_START ? 'live' : 'device', payloadBytes: 0 };
        this.sections.set(id, section);
        this.section = section;
        if (type === RecordType.SECTION_START) {
          this.records.start++;
          if (idstr !== RAM_SECTION_IDSTR) return this.fail('unsupported', `live section "${idstr}" (only "ram" is decoded)`, need);
          this.ramSectionId = id;
          this.enterRam(type);
        } else {
          this.records.full++;
          this.enterDevice(need);
        }
        return need;
      }
      case RecordType.SECTION_PART:
      case RecordType.SECTION_END: {
        if (end - p < 5) return NEED_MORE;
        const id = be32(b, p + 1);
        const section = this.sections.get(id);
        if (type === RecordType.SECTION_PART) this.records.part++;
        else this.records.end++;
        if (!section) return this.fail('protocol', `section ${id} was never started`);
        this.section = section;
        if (id !== this.ramSectionId) return this.fail('unsupported', `live section "${section.idstr}" (only "ram" is decoded)`, 5);
        if (type === RecordType.SECTION_END && !this.stopAndCopy) this.beginStopAndCopy();
        this.enterRam(type);
        return 5;
      }
      case RecordType.SECTION_FOOTER: {
        if (end - p < 5) return NEED_MORE;
        const id = be32(b, p + 1);
        if (!this.section || id !== this.section.id) {
          return this.fail('protocol', `section footer for ${id}, expected ${this.section ? this.section.id : 'no footer'}`);
        }
        this.footers = true;
        this.records.footer++;
        return 5;
      }
      case RecordType.EOF:
        this.onEof(this.curOffset, this.curAt);
        return 1;
      case RecordType.CONFIGURATION: {
        if (end - p < 5) return NEED_MORE;
        const len = be32(b, p + 1);
        if (len > 512) return this.fail('corrupt', `configuration machine name of ${len} bytes`);
        if (end - p < 5 + len) return NEED_MORE;
        this.machineType = latin1(b, p + 5, len);
        this.inConfiguration = true;
        return 5 + len;
      }
      case RecordType.SUBSECTION:
        if (!this.inConfiguration) return this.fail('protocol', 'subsection outside a VMState');
        return this.stepConfigSubsection(b, p, end);
      case RecordType.COMMAND: {
        if (end - p < 5) return NEED_MORE;
        const cmd = be16(b, p + 1);
        const len = be16(b, p + 3);
        // The package is a nested stream of ordinary records: read on through it.
        const used = cmd === MigCommand.PACKAGED ? 9 : len <= MAX_INLINE_COMMAND ? 5 + len : 5;
        if (end - p < used) return NEED_MORE;
        this.records.commands++;
        if (this.commands.length < 64) this.commands.push(MIG_COMMANDS[cmd] ?? `CMD_${cmd}`);
        if (cmd === MigCommand.POSTCOPY_ADVISE || cmd === MigCommand.POSTCOPY_RUN) this.postcopy = true;
        if (used === 5) this.skip = len;
        return used;
      }
      case RecordType.VMDESCRIPTION: {
        if (end - p < 5) return NEED_MORE;
        const len = be32(b, p + 1);
        this.vmDescRemaining = len;
        this.vmDescLen = 0;
        this.vmDescBuf = new Uint8Array(Math.min(len, this.maxVmDescriptionBytes));
        this.vmDescription = { bytes: len };
        this.mode = M_VMDESC;
        return 5;
      }
      default:
        return this.fail('protocol', `unknown record type 0x${type.toString(16)} at stream offset ${this.curOffset}`);
    }
  }

  private stepConfigSubsection(b: Uint8Array, p: number, end: number): number {
    if (end - p < 2) return NEED_MORE;
    const len = b[p + 1];
    const head = 2 + len + 4;
    if (end - p < head) return NEED_MORE;
    const name = latin1(b, p + 2, len);
    const q = p + head;
    if (name === 'configuration/target-page-bits') {
      if (end - q < 4) return NEED_MORE;
      return head + 4;
    }
    if (name === 'configuration/uuid') {
      if (end - q < 16) return NEED_MORE;
      return head + 16;
    }
    if (name === 'configuration/capabilities') {
      if (end - q < 4) return NEED_MORE;
      const count = be32(b, q);
      if (count > 64) return this.fail('corrupt', `${count} capabilities in the configuration`);
      let r = q + 4;
      const names: string[] = [];
      for (let i = 0; i < count; i++) {
        if (end - r < 1) return NEED_MORE;
        const n = b[r];
        if (end - r < 1 + n) return NEED_MORE;
        names.push(latin1(b, r + 1, n));
        r += 1 + n;
      }
      this.capabilities.push(...names);
      return r - p;
    }
    return this.fail('unsupported', `configuration subsection "${name}"`);
  }

  private stepMemSize(b: Uint8Array, p: number, end: number): number {
    if (end - p < 1) return NEED_MORE;
    const len = b[p];
    if (end - p < 1 + len + 8) return NEED_MORE;
    const hi = be32(b, p + 1 + len);
    const lo = be32(b, p + 5 + len);
    const length = hi * 4294967296 + lo;
    const index = this.blockIndex(b, p + 1, len);
    this.blocks[index].length = length;
    if (this.trackResends && length > 0) this.framesOf(index, length - this.pageSize);
    this.memSizeSum += length;
    if (this.ramTotal === undefined || this.memSizeSum >= this.ramTotal) this.mode = M_RAM;
    if (this.ramTotal !== undefined && this.memSizeSum > this.ramTotal) {
      return this.fail('corrupt', `RAM block lengths add up to ${this.memSizeSum}, more than the announced ${this.ramTotal}`, 1 + len + 8);
    }
    return 1 + len + 8;
  }

  /** One RAM record: the per-page hot path. */
  private stepRam(b: Uint8Array, p: number, end: number): number {
    if (end - p < 8) return NEED_MORE;
    const hi = be32(b, p);
    const lo = be32(b, p + 4);
    const flags = lo & this.flagMask;
    const address = hi * 4294967296 + (lo - flags);
    if (flags === RamFlag.EOS) {
      this.records.eos++;
      this.recovering = false;
      this.mode = M_TOP;
      return 8;
    }
    const kind = flags & ~RamFlag.CONTINUE;
    if ((kind & PAGE_KINDS) === 0 || (kind & (kind - 1)) !== 0) {
      if (flags === RamFlag.MEM_SIZE) {
        this.ramTotal = address;
        this.memSizeSum = 0;
        this.mode = address === 0 ? M_RAM : M_MEMSIZE;
        return 8;
      }
      if (flags === RamFlag.MULTIFD_FLUSH) {
        this.records.multifdFlush++;
        return 8;
      }
      if (flags & RamFlag.HOOK) return this.fail('unsupported', 'RDMA hook record in a TCP stream');
      return this.fail('corrupt', `RAM record with flags 0x${flags.toString(16)} at stream offset ${this.curOffset}`);
    }
    let q = p + 8;
    let block = this.currentBlock;
    if ((flags & RamFlag.CONTINUE) === 0) {
      if (end - q < 1) return NEED_MORE;
      const len = b[q];
      if (end - q < 1 + len) return NEED_MORE;
      block = this.blockIndex(b, q + 1, len);
      q += 1 + len;
    } else if (block < 0) {
      return this.fail('protocol', `CONTINUE page record before any block was named, at stream offset ${this.curOffset}`);
    }
    let skip = 0;
    switch (kind) {
      case RamFlag.ZERO:
        if (end - q < 1) return NEED_MORE;
        q += 1;
        break;
      case RamFlag.PAGE:
        skip = this.pageSize;
        break;
      case RamFlag.XBZRLE:
        if (end - q < 3) return NEED_MORE;
        if (b[q] !== ENCODING_FLAG_XBZRLE) return this.fail('corrupt', `XBZRLE encoding byte 0x${b[q].toString(16)}`);
        skip = be16(b, q + 1);
        if (skip > this.pageSize) return this.fail('corrupt', `XBZRLE page of ${skip} bytes`);
        q += 3;
        break;
      default: // COMPRESS_PAGE
        if (end - q < 4) return NEED_MORE;
        skip = be32(b, q);
        if (skip > 2 * this.pageSize + 64) return this.fail('corrupt', `compressed page of ${skip} bytes`);
        q += 4;
        break;
    }
    // Everything needed is here: account for the page once.
    if ((flags & RamFlag.CONTINUE) === 0) this.blockUncertain = false;
    this.currentBlock = block;
    this.skip = skip;
    this.notePage(this.blockUncertain ? -1 : block, address, kind);
    return q - p;
  }

  /** `block` -1: not known for sure (after a resync), so not used for order or re-sends. */
  private notePage(block: number, address: number, kind: number): void {
    if (this.sectionPhase !== RecordType.SECTION_END && block < 0) {
      if (this.pass === undefined) this.openPass();
    } else if (this.sectionPhase !== RecordType.SECTION_END) {
      const position = block * BLOCK_POSITION_SCALE + address;
      const wrapped = position <= this.lastPosition;
      if (wrapped || this.lastPosition < 0) this.sweeps++;
      this.lastPosition = position;
      let resent = false;
      if (this.trackResends) {
        const frames = this.framesOf(block, address);
        if (frames) {
          const frame = address / this.pageSize;
          resent = frames[frame] >= this.cutIndex;
          frames[frame] = this.ramRecordIndex;
        }
      } else {
        resent = wrapped;
      }
      if (this.pass === undefined) this.openPass();
      else if (resent) this.cutPassAtRamRecord();
    }
    const counts = this.pageCounts;
    const inRecord = this.ramRecordCounts;
    if (kind === RamFlag.ZERO) { counts.zero++; this.pages.zero++; inRecord.zero++; }
    else if (kind === RamFlag.PAGE) { counts.normal++; this.pages.normal++; inRecord.normal++; }
    else if (kind === RamFlag.XBZRLE) { counts.xbzrle++; this.pages.xbzrle++; inRecord.xbzrle++; }
    else { counts.compressed++; this.pages.compressed++; inRecord.compressed++; }
  }

  /** The page-frame table of a block, grown on demand for blocks MEM_SIZE did not announce. */
  private framesOf(block: number, address: number): Int32Array | undefined {
    const state = this.blocks[block];
    const frame = address / this.pageSize;
    let frames = state.lastSentIn;
    if (frames && frame < frames.length) return frames;
    const wanted = Math.max(frame + 1, state.length !== undefined ? Math.ceil(state.length / this.pageSize) : 0, frames ? frames.length * 2 : 256);
    if (this.trackedPages - (frames ? frames.length : 0) + wanted > MAX_TRACKED_PAGES) {
      this.trackResends = false; // too much RAM to track: fall back to sweeps
      return undefined;
    }
    const grown = new Int32Array(wanted).fill(-1);
    if (frames) grown.set(frames);
    this.trackedPages += wanted - (frames ? frames.length : 0);
    state.lastSentIn = frames = grown;
    return frames;
  }

  // ---------------------------------------------------------------- structure

  /** A pass begins with the ram record holding its first page. */
  private openPass(): void {
    const pass: QemuPass = {
      index: this.passes.length + 1,
      start: this.ramRecordAt,
      startOffset: this.ramRecordOffset,
      end: this.ramRecordAt,
      endOffset: this.ramRecordOffset,
      pages: emptyCounts(),
    };
    this.passes.push(pass);
    this.pass = pass;
    this.pageCounts = pass.pages;
    this.cutIndex = this.ramRecordIndex;
  }

  /** A re-sent page: a sync happened before the current ram record, which moves to a new pass. */
  private cutPassAtRamRecord(): void {
    const moved = this.ramRecordCounts;
    const old = this.pass;
    if (old) {
      old.pages.zero -= moved.zero;
      old.pages.normal -= moved.normal;
      old.pages.xbzrle -= moved.xbzrle;
      old.pages.compressed -= moved.compressed;
      this.closePass(this.ramRecordAt, this.ramRecordOffset);
    }
    this.openPass();
    const pages = this.pageCounts;
    pages.zero = moved.zero;
    pages.normal = moved.normal;
    pages.xbzrle = moved.xbzrle;
    pages.compressed = moved.compressed;
  }

  /** The open pass ends where the next thing (pass, stop-and-copy, stream end) begins. */
  private closePass(at: Timestamp, offset = this.curOffset): void {
    if (!this.pass) return;
    this.pass.end = at;
    this.pass.endOffset = offset;
    this.pass = undefined;
    this.pageCounts = this.scratch;
  }
  private readonly scratch = emptyCounts(); // pages outside any pass (should stay empty)

  private enterRam(type: number): void {
    this.sectionPhase = type;
    this.mode = M_RAM;
    this.ramRecordIndex++;
    this.ramRecordAt = this.curAt;
    this.ramRecordOffset = this.curOffset;
    const c = this.ramRecordCounts;
    c.zero = c.normal = c.xbzrle = c.compressed = 0;
  }

  private beginStopAndCopy(): void {
    this.closePass(this.curAt);
    this.lastPosition = -1;
    this.stopAndCopy = {
      start: this.curAt,
      startOffset: this.curOffset,
      pages: emptyCounts(),
      ramBytes: 0,
      deviceSections: 0,
      deviceBytes: 0,
    };
    this.pageCounts = this.stopAndCopy.pages;
  }

  private onEof(offset: number, at: Timestamp): void {
    this.complete = true;
    this.eofAt = at;
    const sc = this.stopAndCopy;
    if (sc) {
      sc.end = at;
      sc.endOffset = offset + 1;
      if (this.firstDeviceOffset >= 0) sc.deviceBytes = offset - this.firstDeviceOffset;
      else sc.ramBytes = offset - sc.startOffset;
    }
  }

  private enterDevice(headerBytes: number): void {
    this.mode = M_DEVICE;
    this.deviceLen = 0;
    this.deviceSearchFrom = 0;
    this.deviceStartOffset = this.curOffset + headerBytes;
    const sc = this.stopAndCopy;
    if (sc && sc.deviceSections === 0) {
      sc.ramBytes = this.curOffset - sc.startOffset;
      this.firstDeviceOffset = this.curOffset;
    }
    if (sc) sc.deviceSections++;
  }

  /** FULL payloads have no length: buffer them (device state is small) until the footer, or
   *  without footers the next FULL header, is found and confirmed by the bytes after it. */
  private feedDevice(buf: Uint8Array, pos: number, end: number, at: Timestamp): number {
    const n = end - pos;
    if (this.deviceLen + n > this.deviceBuf.length) {
      if (this.deviceLen + n > this.maxDeviceStateBytes) {
        this.stop('unsupported', `device state of section "${this.section?.idstr}" longer than ${this.maxDeviceStateBytes} bytes: its end cannot be found`, at);
        return end;
      }
      const grown = new Uint8Array(Math.min(this.maxDeviceStateBytes, Math.max(4096, (this.deviceLen + n) * 2)));
      grown.set(this.deviceBuf.subarray(0, this.deviceLen));
      this.deviceBuf = grown;
    }
    this.deviceBuf.set(buf.subarray(pos, end), this.deviceLen);
    this.deviceLen += n;
    const found = this.findDeviceEnd();
    if (found < 0) return end;
    // found = payload length; the bytes after it go back through the parser
    const rest = this.deviceBuf.slice(found, this.deviceLen);
    this.finishDevice(found);
    this.offset = this.deviceStartOffset + found;
    this.deviceLen = 0;
    this.mode = M_TOP;
    this.feed(rest, 0, rest.length, at);
    return end;
  }

  private finishDevice(payloadLength: number): void {
    if (this.section) this.section.payloadBytes = payloadLength;
  }

  /** Without VMDESCRIPTION (suppress-vmdesc, QEMU ≤ 2.2) the stream's last byte is the EOF
   *  record, so the final FULL payload ends just before it (and its footer). */
  private endInsideDevice(at: Timestamp): void {
    const d = this.deviceBuf;
    const len = this.deviceLen;
    if (len === 0 || d[len - 1] !== RecordType.EOF) return;
    let payload = len - 1;
    if (this.footers) {
      if (len < 6 || d[len - 6] !== RecordType.SECTION_FOOTER || be32(d, len - 5) !== (this.section ? this.section.id : -1)) return;
      payload = len - 6;
      this.records.footer++;
    }
    this.finishDevice(payload);
    this.onEof(this.deviceStartOffset + len - 1, at);
    this.offset = this.deviceStartOffset + len;
    this.deviceLen = 0;
    this.mode = M_TOP;
  }

  /** Payload length of the current FULL record, or -1 if its end is not yet certain. */
  private findDeviceEnd(): number {
    const d = this.deviceBuf;
    const len = this.deviceLen;
    const id = this.section ? this.section.id : -1;
    for (let i = this.deviceSearchFrom; i < len; i++) {
      if (this.footers) {
        if (d[i] !== RecordType.SECTION_FOOTER) continue;
        if (len - i < 6) { this.deviceSearchFrom = i; return -1; }
        if (be32(d, i + 1) !== id) continue;
        const verdict = this.plausibleNext(d, i + 5, len);
        if (verdict === 0) { this.deviceSearchFrom = i; return -1; }
        if (verdict > 0) return i;
      } else {
        const verdict = d[i] === RecordType.SECTION_FULL || d[i] === RecordType.EOF ? this.plausibleNext(d, i, len) : -1;
        if (verdict === 0) { this.deviceSearchFrom = i; return -1; }
        if (verdict > 0) return i;
      }
    }
    this.deviceSearchFrom = len;
    return -1;
  }

  /** Does a record plausibly start at d[i]? 1 yes, -1 no, 0 not enough bytes yet. */
  private plausibleNext(d: Uint8Array, i: number, len: number): number {
    if (i >= len) return 0;
    const type = d[i];
    if (type === RecordType.EOF) {
      if (i + 1 >= len) return 0; // EOF is the last byte (no footers) or VMDESCRIPTION follows
      return d[i + 1] === RecordType.VMDESCRIPTION ? (i + 6 > len ? 0 : d[i + 6] === 0x7b ? 1 : i + 7 > len ? 0 : -1) : -1;
    }
    if (type === RecordType.VMDESCRIPTION) return -1;
    if (type === RecordType.SECTION_FULL || type === RecordType.SECTION_START) {
      if (len - i < 6) return 0;
      const id = be32(d, i + 1);
      if (id > 0xffff || this.sections.has(id)) return -1;
      const n = d[i + 5];
      if (len - i < 6 + n + 8) return 0;
      if (!isPrintableName(d, i + 6, n)) return -1;
      return be32(d, i + 6 + n) < 0x10000 && be32(d, i + 10 + n) < 0x10000 ? 1 : -1;
    }
    if (type === RecordType.SECTION_END || type === RecordType.SECTION_PART) {
      if (len - i < 5) return 0;
      return this.sections.has(be32(d, i + 1)) ? 1 : -1;
    }
    if (type === RecordType.COMMAND) {
      if (len - i < 3) return 0;
      return be16(d, i + 1) < MIG_COMMANDS.length ? 1 : -1;
    }
    return -1;
  }

  private feedVmDescription(buf: Uint8Array, pos: number, end: number, at: Timestamp): number {
    const n = Math.min(this.vmDescRemaining, end - pos);
    const keep = this.vmDescBuf;
    if (keep && this.vmDescLen < keep.length) {
      const k = Math.min(n, keep.length - this.vmDescLen);
      keep.set(buf.subarray(pos, pos + k), this.vmDescLen);
      this.vmDescLen += k;
    }
    this.vmDescRemaining -= n;
    this.offset += n;
    if (this.vmDescRemaining === 0) {
      this.parseVmDescription();
      if (this.stopAndCopy) {
        this.stopAndCopy.end = at;
        this.stopAndCopy.endOffset = this.offset;
      }
      this.mode = M_TOP;
    }
    return pos + n;
  }

  private parseVmDescription(): void {
    const keep = this.vmDescBuf;
    this.vmDescBuf = undefined;
    if (!keep || !this.vmDescription || this.vmDescLen < keep.length || keep.length < this.vmDescription.bytes) return;
    try {
      const json = JSON.parse(Buffer.from(keep.buffer, keep.byteOffset, this.vmDescLen).toString('utf8')) as { page_size?: unknown; devices?: unknown };
      if (typeof json.page_size === 'number') this.vmDescription.pageSize = json.page_size;
      if (Array.isArray(json.devices)) this.vmDescription.devices = json.devices.length;
    } catch {
      // a description we cannot read changes nothing decoded before it
    }
  }

  private blockIndex(b: Uint8Array, p: number, len: number): number {
    const blocks = this.blocks;
    outer: for (let i = 0; i < blocks.length; i++) {
      const name = blocks[i].nameBytes;
      if (name.length !== len) continue;
      for (let j = 0; j < len; j++) if (name[j] !== b[p + j]) continue outer;
      return i;
    }
    blocks.push({ name: latin1(b, p, len), nameBytes: b.slice(p, p + len) });
    return blocks.length - 1;
  }

  private enterResync(): void {
    this.mode = M_RESYNC;
    this.stageLen = 0;
    this.skip = 0;
    this.resyncTailLen = 0;
    this.recovering = false;
    if (this.currentBlock >= 0) this.blockUncertain = true;
  }

  /** The anchor: EOS, [footer 7e <ram id>], then a PART or END header of the ram section. */
  private anchorAt(b: Uint8Array, i: number): boolean {
    for (let k = 0; k < 7; k++) if (b[i + k] !== 0) return false;
    if (b[i + 7] !== RamFlag.EOS) return false;
    let q = i + 8;
    const id = this.ramSectionId;
    if (this.footers) {
      if (b[q] !== RecordType.SECTION_FOOTER || be32(b, q + 1) !== id) return false;
      q += 5;
    }
    return (b[q] === RecordType.SECTION_PART || b[q] === RecordType.SECTION_END) && be32(b, q + 1) === id;
  }

  /** Scan for the anchor; on a match, parsing resumes at the section header. */
  private scanForRamSection(buf: Uint8Array, pos: number, end: number, at: Timestamp): number {
    const anchorLength = this.footers ? 18 : 13;
    const headerAt = anchorLength - 5;
    const resync = this.resyncs[this.resyncs.length - 1];
    // 1. anchors straddling the previous chunk's tail and this chunk
    const tail = this.resyncTail;
    const had = this.resyncTailLen;
    if (had > 0) {
      const k = Math.min(anchorLength - 1, end - pos);
      for (let i = 0; i < k; i++) tail[had + i] = buf[pos + i];
      for (let i = 0; i + anchorLength <= had + k; i++) {
        if (!this.anchorAt(tail, i)) continue;
        const header = i + headerAt;
        this.resumeAt(resync, this.offset - had + header);
        if (header < had) {
          const rest = tail.slice(header, had);
          this.offset -= had - header;
          this.feed(rest, 0, rest.length, at);
          return pos;
        }
        this.offset += header - had;
        return pos + (header - had);
      }
    }
    // 2. anchors inside this chunk
    for (let i = pos; i + anchorLength <= end; i++) {
      if (buf[i + 7] !== RamFlag.EOS || !this.anchorAt(buf, i)) continue;
      const header = i + headerAt;
      this.offset += header - pos;
      this.resumeAt(resync, this.offset);
      return header;
    }
    // 3. none: keep the last bytes for the next chunk
    const keep = Math.min(anchorLength - 1, end - pos + had);
    const fromTail = Math.max(0, keep - (end - pos));
    tail.copyWithin(0, had - fromTail, had);
    for (let i = 0; i < keep - fromTail; i++) tail[fromTail + i] = buf[end - (keep - fromTail) + i];
    this.resyncTailLen = keep;
    this.offset += end - pos;
    return end;
  }

  private resumeAt(resync: QemuResync, offset: number): void {
    resync.resumedOffset = offset;
    resync.skippedBytes = offset - resync.gapOffset - resync.lostBytes;
    this.mode = M_TOP;
    this.section = this.sections.get(this.ramSectionId);
    this.recovering = true;
    this.resyncTailLen = 0;
  }

  private fail(kind: ProblemKind, detail: string, consumed?: number): number {
    if (this.recovering && this.resyncs.length < MAX_RESYNCS) {
      // the anchor was a false match (or the section after it is damaged): search on
      this.resyncs.push({ gapOffset: this.curOffset, lostBytes: 0 });
      this.enterResync();
      return FAILED;
    }
    this.stop(kind, detail, this.curAt, consumed === undefined ? this.curOffset : this.curOffset + consumed);
    return FAILED;
  }

  private stop(kind: ProblemKind, detail: string, at: Timestamp, offset = this.offset): void {
    if (this.mode >= M_STOPPED) return;
    this.closePass(at, offset);
    this.stopped = { kind, detail, offset, at };
    this.mode = M_STOPPED;
    this.stageLen = 0;
    this.skip = 0;
  }
}

function modeName(mode: number): string {
  return ['the header', 'between records', 'RAM records', 'the RAM block list', 'device state', 'the VM description', 'a search for the next ram section after a gap', 'stopped', 'done'][mode] ?? 'unknown';
}
