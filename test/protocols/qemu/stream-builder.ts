// Builds QEMU migration streams byte by byte for tests, following the writer side of
// migration/savevm.c and migration/ram.c (see src/protocols/qemu/README.md).
/** Small pages keep the every-split tests quick (flags need 10 bits, so ≥ 1024). */
export const TEST_PAGE_SIZE = 1024;

export class StreamBuilder {
  private readonly parts: number[] = [];
  private lastBlock = '';

  constructor(private readonly pageSize = TEST_PAGE_SIZE) {}

  bytes(...values: number[]): this {
    this.parts.push(...values);
    return this;
  }
  be16(v: number): this {
    return this.bytes((v >>> 8) & 255, v & 255);
  }
  be32(v: number): this {
    return this.bytes((v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  }
  be64(v: number): this {
    return this.be32(Math.floor(v / 2 ** 32)).be32(v % 2 ** 32);
  }
  str8(s: string): this {
    return this.bytes(s.length, ...Buffer.from(s, 'latin1'));
  }
  filler(n: number, value = 0xa5): this {
    for (let i = 0; i < n; i++) this.parts.push(value);
    return this;
  }

  header(version = 3): this {
    return this.be32(0x5145564d).be32(version);
  }
  configuration(machine: string): this {
    return this.bytes(0x07).be32(machine.length).bytes(...Buffer.from(machine, 'latin1'));
  }
  command(cmd: number, body: number[] = []): this {
    return this.bytes(0x08).be16(cmd).be16(body.length).bytes(...body);
  }
  sectionStart(type: 0x01 | 0x04, id: number, idstr: string, instance = 0, version = 4): this {
    return this.bytes(type).be32(id).str8(idstr).be32(instance).be32(version);
  }
  sectionPart(type: 0x02 | 0x03, id: number): this {
    return this.bytes(type).be32(id);
  }
  footer(id: number): this {
    return this.bytes(0x7e).be32(id);
  }
  memSize(blocks: [string, number][]): this {
    const total = blocks.reduce((s, [, len]) => s + len, 0);
    this.be64(total + 0x04);
    for (const [name, len] of blocks) this.str8(name).be64(len);
    return this;
  }
  eos(): this {
    return this.be64(0x10);
  }
  /** A page record; names the block unless it is the same as the previous record's. */
  private pageHeader(block: string, address: number, flag: number): this {
    const cont = block === this.lastBlock;
    this.be64(address + flag + (cont ? 0x20 : 0));
    if (!cont) this.str8(block);
    this.lastBlock = block;
    return this;
  }
  zeroPage(block: string, address: number): this {
    return this.pageHeader(block, address, 0x02).bytes(0);
  }
  normalPage(block: string, address: number): this {
    return this.pageHeader(block, address, 0x08).filler(this.pageSize);
  }
  xbzrlePage(block: string, address: number, encoded: number): this {
    return this.pageHeader(block, address, 0x40).bytes(0x01).be16(encoded).filler(encoded, 0x01);
  }
  compressedPage(block: string, address: number, length: number): this {
    return this.pageHeader(block, address, 0x100).be32(length).filler(length, 0x78);
  }
  vmDescription(json: string): this {
    const body = Buffer.from(json, 'utf8');
    return this.bytes(0x06).be32(body.length).bytes(...body);
  }
  build(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export const RAM_ID = 3;
export const BLOCKS: [string, number][] = [
  ['pc.ram', 64 * 4096],
  ['/rom@etc/acpi/tables', 4 * 4096],
];

/** A 7.2-style precopy stream: every record type, two passes, stop-and-copy, devices, footer. */
export function currentFormatStream(): { bytes: Uint8Array; expected: ExpectedStream } {
  const b = new StreamBuilder();
  b.header().configuration('pc-i440fx-7.2').command(1).command(2, [0, 0, 0, 1]);
  b.sectionStart(0x01, RAM_ID, 'ram').memSize(BLOCKS).eos().footer(RAM_ID);
  // pass 1: ascending, every page kind, CONTINUE and block switches
  b.sectionPart(0x02, RAM_ID).normalPage('pc.ram', 0).zeroPage('pc.ram', 4096).xbzrlePage('pc.ram', 2 * 4096, 100).eos().footer(RAM_ID);
  b.sectionPart(0x02, RAM_ID).compressedPage('pc.ram', 3 * 4096, 1500).normalPage('/rom@etc/acpi/tables', 0).zeroPage('/rom@etc/acpi/tables', 4096).eos().footer(RAM_ID);
  // pass 2: page 0 of pc.ram is sent again → a sync happened before this section
  b.sectionPart(0x02, RAM_ID).normalPage('pc.ram', 0).normalPage('pc.ram', 5 * 4096).eos().footer(RAM_ID);
  // stop-and-copy
  b.sectionPart(0x03, RAM_ID).normalPage('pc.ram', 0).zeroPage('pc.ram', 4096).eos().footer(RAM_ID);
  b.sectionStart(0x04, 0, 'timer', 0, 2).filler(24, 0x7e).footer(0);
  b.sectionStart(0x04, 5, 'cpu', 0, 12).bytes(0x7e, 0, 0, 0, 5, 0x42).filler(40).footer(5); // a fake footer inside the payload
  b.bytes(0x00).vmDescription('{"page_size": 1024, "devices": [{"name": "timer"}, {"name": "cpu"}]}');
  return {
    bytes: b.build(),
    expected: {
      footers: true,
      pages: { zero: 3, normal: 5, xbzrle: 1, compressed: 1 },
      passPages: [
        { zero: 2, normal: 2, xbzrle: 1, compressed: 1 },
        { zero: 0, normal: 2, xbzrle: 0, compressed: 0 },
      ],
      stopAndCopyPages: { zero: 1, normal: 1, xbzrle: 0, compressed: 0 },
      devices: ['timer', 'cpu'],
      devicePayloads: [24, 46],
    },
  };
}

/** A 2014-era stream (QEMU 2.0/2.1): no configuration, no footers, no VM description. */
export function legacyFormatStream(): { bytes: Uint8Array; expected: ExpectedStream } {
  const b = new StreamBuilder();
  b.header().sectionStart(0x01, 2, 'ram').memSize(BLOCKS).eos();
  b.sectionPart(0x02, 2).normalPage('pc.ram', 0).zeroPage('pc.ram', 4096).normalPage('pc.ram', 8192).eos();
  b.sectionPart(0x02, 2).zeroPage('pc.ram', 4096).eos();
  b.sectionPart(0x03, 2).normalPage('pc.ram', 8192).eos();
  b.sectionStart(0x04, 3, 'timer', 0, 2).filler(24, 0x04);
  b.sectionStart(0x04, 4, 'apic', 0, 3).filler(30, 0x00);
  b.bytes(0x00);
  return {
    bytes: b.build(),
    expected: {
      footers: false,
      pages: { zero: 2, normal: 3, xbzrle: 0, compressed: 0 },
      passPages: [
        { zero: 1, normal: 2, xbzrle: 0, compressed: 0 },
        { zero: 1, normal: 0, xbzrle: 0, compressed: 0 },
      ],
      stopAndCopyPages: { zero: 0, normal: 1, xbzrle: 0, compressed: 0 },
      devices: ['timer', 'apic'],
      devicePayloads: [24, 30],
    },
  };
}

export interface ExpectedStream {
  footers: boolean;
  pages: { zero: number; normal: number; xbzrle: number; compressed: number };
  passPages: { zero: number; normal: number; xbzrle: number; compressed: number }[];
  stopAndCopyPages: { zero: number; normal: number; xbzrle: number; compressed: number };
  devices: string[];
  devicePayloads: number[];
}
