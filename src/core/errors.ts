// One error type for damaged or unreadable input. It carries its place (file, packet number,
// byte offset) so the message says where; readers record it and stop or resync, keeping results.

export type ProblemKind =
  | 'unreadable' // cannot open / not a capture at all / wrong magic
  | 'truncated' // file ends inside a header or record
  | 'corrupt' // a length or field that cannot be right
  | 'snaplen' // packet cut by the capture's snaplen (decoded as far as it goes)
  | 'gap' // TCP bytes never seen
  | 'protocol' // a protocol message that could not be decoded
  | 'unsupported'; // valid input we do not decode (TLS, compression, multifd, ...)

export class CaptureProblem extends Error {
  constructor(
    readonly kind: ProblemKind,
    readonly file: string,
    readonly detail: string,
    readonly packet?: number, // 1-based packet number, when known
    readonly byteOffset?: number, // offset in the (decompressed) file, when known
  ) {
    super(describeProblem(kind, file, detail, packet, byteOffset));
    this.name = 'CaptureProblem';
  }

  toJSON(): Record<string, unknown> {
    return { kind: this.kind, file: this.file, packet: this.packet, byteOffset: this.byteOffset, detail: this.detail };
  }
}

function describeProblem(kind: ProblemKind, file: string, detail: string, packet?: number, byteOffset?: number): string {
  const where = [packet !== undefined ? `packet ${packet}` : '', byteOffset !== undefined ? `byte offset ${byteOffset}` : '']
    .filter(Boolean)
    .join(', ');
  return `${file}: ${kind}: ${detail}${where ? ` (${where})` : ''}`;
}

/** Process exit codes, documented in README. */
export const ExitCode = {
  ok: 0,
  usage: 1, // bad command line
  unreadable: 2, // no input could be read at all
  partial: 3, // input damaged: results are from the readable part
  migrationFailed: 4, // capture fine, but a migration in it failed or is incomplete (analyze only)
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
