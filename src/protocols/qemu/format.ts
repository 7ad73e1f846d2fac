// Wire constants of QEMU's migration stream (migration/savevm.c, migration/ram.c), as data.
// See /work/shared/reference/qemu-migration-stream.md and src/protocols/qemu/README.md.

export const QEMU_VM_FILE_MAGIC = 0x5145564d; // "QEVM"
export const QEMU_VM_FILE_VERSION = 3;
export const QEMU_VM_FILE_VERSION_COMPAT = 2;
/** First word of every multifd channel connection (migration/multifd.c). */
export const MULTIFD_MAGIC = 0x11223344;

/** Top-level record type bytes (migration/savevm.h). */
export const RecordType = {
  EOF: 0x00,
  SECTION_START: 0x01,
  SECTION_PART: 0x02,
  SECTION_END: 0x03,
  SECTION_FULL: 0x04,
  SUBSECTION: 0x05,
  VMDESCRIPTION: 0x06,
  CONFIGURATION: 0x07,
  COMMAND: 0x08,
  SECTION_FOOTER: 0x7e,
} as const;

/** Flag bits in the low bits of each RAM record's be64 address word (migration/ram.c). */
export const RamFlag = {
  FULL: 0x01, // obsolete
  ZERO: 0x02, // was COMPRESS: a page filled with one byte
  MEM_SIZE: 0x04,
  PAGE: 0x08,
  EOS: 0x10,
  CONTINUE: 0x20,
  XBZRLE: 0x40,
  HOOK: 0x80, // RDMA only
  COMPRESS_PAGE: 0x100, // legacy compress capability, removed in 9.1
  MULTIFD_FLUSH: 0x200, // 8.0 and later
} as const;

/** XBZRLE record's encoding byte. */
export const ENCODING_FLAG_XBZRLE = 0x01;

/** MIG_CMD_* of the COMMAND record (migration/savevm.c, enum qemu_vm_cmd). */
export const MIG_COMMANDS: readonly string[] = [
  'INVALID',
  'OPEN_RETURN_PATH',
  'PING',
  'POSTCOPY_ADVISE',
  'POSTCOPY_LISTEN',
  'POSTCOPY_RUN',
  'POSTCOPY_RAM_DISCARD',
  'PACKAGED',
  'ENABLE_COLO',
  'POSTCOPY_RESUME',
  'RECV_BITMAP',
  'SWITCHOVER_START',
];
export const MigCommand = { OPEN_RETURN_PATH: 1, PING: 2, POSTCOPY_ADVISE: 3, POSTCOPY_RUN: 5, PACKAGED: 7 } as const;

/** MIG_RP_MSG_* on the return path (destination → source, the reverse direction of the socket). */
export const RETURN_PATH_MESSAGES: readonly string[] = [
  'INVALID',
  'SHUT',
  'PONG',
  'REQ_PAGES_ID',
  'REQ_PAGES',
  'RECV_BITMAP',
  'RESUME_ACK',
  'SWITCHOVER_ACK',
];
export const ReturnPathMessage = { SHUT: 1, PONG: 2, REQ_PAGES_ID: 3, REQ_PAGES: 4 } as const;

/** The idstr of the RAM live section. */
export const RAM_SECTION_IDSTR = 'ram';
