// Entry point of the capture layer: open a file (or stdin, or any stream), inflate gzip, sniff the
// format from its magic bytes and drive that format's push parser, which emits one reused
// PacketRecord per frame into the sink. Plain files take a synchronous readSync loop over one
// reused 4 MiB buffer (no promise per chunk); gzip and pipes go through async iteration.
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { CaptureProblem, type ProblemKind } from '../core/errors';
import { captureFormats } from './formats';
import { LinkType, type CaptureFormat, type CaptureInterface, type CaptureSummary, type PacketRecord, type PacketSink } from './types';

/** A push parser for one format: gets the input in chunks of any size (chunks are only valid
 *  during the call: the parser copies what it must keep), emits PacketRecords to ctx.sink.
 *  Chunks are often Node Buffers, whose slice() is a view, not a copy: copy with
 *  Uint8Array.prototype.slice.call(chunk, a, b) or Buffer.from(chunk.subarray(a, b)). */
export interface ChunkParser {
  push(chunk: Uint8Array): void;
  /** End of input: report a record cut short as truncation. */
  finish(): void;
}

export interface CaptureFormatSpec {
  readonly name: CaptureFormat;
  /** `head`: the first 16 bytes of the (decompressed) input, fewer when the input is shorter. */
  sniff(head: Uint8Array): boolean;
  createParser(ctx: ParserContext): ChunkParser;
}

export interface InterfaceDescription {
  readonly linkType: number;
  readonly snaplen: number;
  readonly tsDigits: number;
  readonly name?: string;
  readonly description?: string;
}

/** What a parser gets from the reader: the sink, the one reused record, counters and helpers. */
export interface ParserContext {
  readonly file: string;
  readonly sink: PacketSink;
  /** The one PacketRecord object: fill it, set index = ++packets, pass it to sink.packet. */
  readonly record: PacketRecord;
  /** Packets delivered so far (the parser increments it). */
  packets: number;
  /** Set by a fatal problem: the parser ignores further input and the reader stops reading. */
  readonly stopped: boolean;
  /** Registers an interface under a capture-wide unique id and announces it to the sink. */
  addInterface(desc: InterfaceDescription): CaptureInterface;
  /** Records a problem (packet number defaults to the packet being read, packets + 1; 0 = none).
   *  `fatal`: reading stops here and the summary says incomplete. */
  problem(kind: ProblemKind, detail: string, byteOffset: number, fatal: boolean, packet?: number): void;
  setComment(text: string): void;
}

export interface ReadOptions {
  /** Formats to try, in order (default: every registered format). */
  formats?: readonly CaptureFormatSpec[];
  /** Called after each chunk with the bytes read so far (compressed bytes for gzip files) and the
   *  file size when known: for progress indicators. */
  onProgress?(bytesRead: number, totalBytes: number | undefined): void;
}

const CHUNK_SIZE = 4 * 1024 * 1024;
const SNIFF_BYTES = 16;
const EMPTY = new Uint8Array(0);
let sharedReadBuffer: Buffer | undefined; // safe to share: the file loop below never yields

/** Known link types, to warn once about an interface whose frames nothing downstream decodes. */
const decodedLinkTypes = new Set<number>(Object.values(LinkType));

/** State of one capture being read; implements the ParserContext handed to the format parser. */
class CaptureReading implements ParserContext {
  packets = 0;
  stopped = false;
  readonly record: PacketRecord = {
    buf: EMPTY, offset: 0, caplen: 0, wirelen: 0, sec: 0, ps: 0, interfaceId: 0, linkType: 0, index: 0, fileOffset: 0,
  };
  private readonly interfaces: CaptureInterface[] = [];
  private readonly problems: CaptureProblem[] = [];
  private comment: string | undefined;
  private incomplete = false;
  private bytesRead = 0;
  private format: CaptureFormat = 'unknown';
  private parser: ChunkParser | undefined;
  private head: Uint8Array[] = []; // chunks held back until SNIFF_BYTES are there to sniff
  private headLength = 0;

  constructor(readonly file: string, readonly sink: PacketSink, private readonly formats: readonly CaptureFormatSpec[]) {}

  addInterface(desc: InterfaceDescription): CaptureInterface {
    const iface: CaptureInterface = { id: this.interfaces.length, ...desc };
    this.interfaces.push(iface);
    this.sink.interface?.(iface);
    if (!decodedLinkTypes.has(desc.linkType)) {
      this.problem('unsupported', `interface ${iface.id} has link type ${desc.linkType}, which is not decoded: its packets are read but not analysed`, this.bytesRead, false, 0);
    }
    return iface;
  }

  problem(kind: ProblemKind, detail: string, byteOffset: number, fatal: boolean, packet = this.packets + 1): void {
    const problem = new CaptureProblem(kind, this.file, detail, packet > 0 ? packet : undefined, byteOffset);
    this.problems.push(problem);
    this.sink.problem?.(problem);
    if (fatal) {
      this.stopped = true;
      this.incomplete = true;
    }
  }

  setComment(text: string): void {
    this.comment = this.comment === undefined ? text : `${this.comment}\n${text}`;
  }

  feed(chunk: Uint8Array): void {
    if (this.stopped || chunk.length === 0) return;
    this.bytesRead += chunk.length;
    if (this.parser) {
      this.parser.push(chunk);
      return;
    }
    if (this.headLength === 0 && chunk.length >= SNIFF_BYTES) {
      this.startParser(chunk);
      return;
    }
    // Copy: the caller reuses its buffer, and these bytes wait for the sniff.
    this.head.push(Uint8Array.prototype.slice.call(chunk));
    this.headLength += chunk.length;
    if (this.headLength >= SNIFF_BYTES) this.startParser(concat(this.head, this.headLength));
  }

  /** The input failed (gzip damage, read error): keep what we have, say where it stopped. */
  inputFailed(err: unknown, compressed: boolean): void {
    const e = err as NodeJS.ErrnoException;
    const message = e?.message ?? String(err);
    const kind: ProblemKind = e?.code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(message)
      ? 'truncated'
      : compressed && e?.code?.startsWith('Z_') ? 'corrupt' : 'unreadable';
    this.problem(kind, compressed ? `gzip stream: ${message}` : `read failed: ${message}`, this.bytesRead, true);
  }

  end(): void {
    if (!this.parser && !this.stopped) {
      if (this.headLength === 0) {
        this.problem('unreadable', 'empty input: not a capture', 0, true, 0);
        return;
      }
      this.startParser(concat(this.head, this.headLength));
    }
    if (this.parser && !this.stopped) this.parser.finish();
  }

  summary(): CaptureSummary {
    return {
      file: this.file,
      format: this.format,
      packets: this.packets,
      bytesRead: this.bytesRead,
      interfaces: this.interfaces,
      problems: this.problems,
      comment: this.comment,
      incomplete: this.incomplete,
    };
  }

  private startParser(head: Uint8Array): void {
    this.head = [];
    const spec = this.formats.find((f) => f.sniff(head.subarray(0, SNIFF_BYTES)));
    if (!spec) {
      const magic = Buffer.from(head.subarray(0, 4)).toString('hex');
      this.problem('unreadable', `not a capture file: unknown magic 0x${magic} (known: ${this.formats.map((f) => f.name).join(', ')}, gzip)`, 0, true, 0);
      return;
    }
    this.format = spec.name;
    this.parser = spec.createParser(this);
    this.parser.push(head);
  }
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Reads a capture file ('-' = stdin) into `sink`. Rejects only when the file cannot be opened;
 * damaged content becomes CaptureProblems in the summary (and sink.problem), packets before the
 * damage are delivered, and `incomplete` says whether reading had to stop early.
 */
export async function readCapture(file: string, sink: PacketSink, options: ReadOptions = {}): Promise<CaptureSummary> {
  if (file === '-') return readCaptureStream('-', process.stdin, sink, options);
  const fd = fs.openSync(file, 'r');
  let closeFd = true;
  try {
    const total = fs.fstatSync(fd).size;
    const buffer = (sharedReadBuffer ??= Buffer.allocUnsafe(CHUNK_SIZE));
    let n = fs.readSync(fd, buffer, 0, CHUNK_SIZE, null); // throws for a directory: "cannot open"
    if (n >= 2 && buffer[0] === 0x1f && buffer[1] === 0x8b) {
      closeFd = false; // the stream owns it now
      const input = fs.createReadStream('', { fd, start: 0, highWaterMark: 1024 * 1024 });
      return await readCaptureStream(file, input, sink, options, total);
    }
    const reading = new CaptureReading(file, sink, options.formats ?? captureFormats);
    let read = 0;
    while (n > 0) {
      read += n;
      reading.feed(buffer.subarray(0, n));
      if (reading.stopped) break;
      options.onProgress?.(read, total);
      try {
        n = fs.readSync(fd, buffer, 0, CHUNK_SIZE, null);
      } catch (err) {
        reading.inputFailed(err, false);
        break;
      }
    }
    reading.end();
    return reading.summary();
  } finally {
    if (closeFd) fs.closeSync(fd);
  }
}

/**
 * Reads a capture from a stream (a pipe from tcpdump/dumpcap, stdin, an HTTP body): gzip is
 * detected from its magic and inflated on the fly. Resolves when the stream ends or the capture
 * is found damaged beyond recovery (the stream is then destroyed).
 */
export async function readCaptureStream(
  name: string,
  input: NodeJS.ReadableStream,
  sink: PacketSink,
  options: ReadOptions = {},
  totalBytes?: number,
): Promise<CaptureSummary> {
  const reading = new CaptureReading(name, sink, options.formats ?? captureFormats);
  const iterator = (input as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let headLength = 0;
  let compressed = false;
  let raw: Readable | undefined;
  let gunzip: zlib.Gunzip | undefined;
  let inputBytes = 0;
  try {
    while (headLength < 2) {
      const next = await iterator.next();
      if (next.done) break;
      const chunk = toBytes(next.value);
      head.push(chunk);
      headLength += chunk.length;
      inputBytes += chunk.length;
    }
    const first = concat(head, headLength);
    compressed = headLength >= 2 && first[0] === 0x1f && first[1] === 0x8b;
    let source: AsyncIterable<Uint8Array>;
    if (compressed) {
      raw = Readable.from(continueWith(first, iterator, (n) => { inputBytes += n; }), { objectMode: false });
      gunzip = zlib.createGunzip({ chunkSize: 1024 * 1024 });
      const unzip = gunzip;
      raw.on('error', (err) => unzip.destroy(err));
      raw.pipe(gunzip);
      source = gunzip;
    } else {
      source = continueWith(first, iterator, (n) => { inputBytes += n; });
    }
    for await (const chunk of source) {
      reading.feed(chunk);
      if (reading.stopped) break;
      options.onProgress?.(inputBytes, totalBytes);
    }
  } catch (err) {
    reading.inputFailed(err, compressed);
  } finally {
    raw?.destroy();
    gunzip?.destroy();
    if (reading.stopped) (input as unknown as { destroy?(): void }).destroy?.();
  }
  reading.end();
  return reading.summary();
}

async function* continueWith(
  first: Uint8Array,
  rest: AsyncIterator<Buffer | string>,
  counted: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  if (first.length > 0) yield first;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    const chunk = toBytes(next.value);
    counted(chunk.length);
    yield chunk;
  }
}

function toBytes(value: Buffer | string | Uint8Array): Uint8Array {
  return typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
}

/** Reads a capture held in memory, given as chunks (any split), synchronously: for tests and
 *  for captures built in code. Not gzip-aware (inflate first). */
export function readCaptureBytes(
  name: string,
  chunks: Iterable<Uint8Array>,
  sink: PacketSink,
  options: Pick<ReadOptions, 'formats'> = {},
): CaptureSummary {
  const reading = new CaptureReading(name, sink, options.formats ?? captureFormats);
  for (const chunk of chunks) {
    reading.feed(chunk);
    if (reading.stopped) break;
  }
  reading.end();
  return reading.summary();
}
