// Migration detection on synthetic conversations for the cases the real captures do not cover:
// managed (client-driven), back-to-back in both directions, concurrent, the old v2 procedure
// set, offline, cancelled and incomplete. Messages are built byte by byte (rpc-builder) and go
// through the real framer, payload decoders, data-connection linking and timeline.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Timestamp } from '../../src/core/timestamp';
import type { FlowInfo, StreamConsumer } from '../../src/flow/stream-consumer';
import { LibvirtConversation } from '../../src/protocols/libvirt/conversation';
import { MessageType } from '../../src/protocols/libvirt/rpc';
import { CurrentPacket, dataConnectionDetector } from '../../src/migration/data-connection';
import type { MigrationRecord } from '../../src/migration/record';
import { TimelineBuilder } from '../../src/migration/timeline';
import { rpcMessage, XdrWriter } from '../protocols/libvirt/rpc-builder';

const at = (ms: number): Timestamp => ({ sec: 2000 + Math.floor(ms / 1000), ps: (ms % 1000) * 1_000_000_000 });
const LIVE = 1;
const P2P = 2;
const OFFLINE = 1 << 10;

class Scenario {
  readonly emitted: MigrationRecord[] = [];
  readonly timeline: TimelineBuilder;
  private readonly current = new CurrentPacket();
  private readonly data: ReturnType<typeof dataConnectionDetector>;
  private packet = 0;
  private flows = 0;

  constructor(retain = true) {
    this.timeline = new TimelineBuilder({ capture: 'synthetic', tsDigits: 9, retain, onMigration: (r) => this.emitted.push(r) });
    this.data = dataConnectionDetector(this.timeline, this.current);
  }

  connect(client: string, server: string, ms: number): Connection {
    const flow = this.flow(client, 40000 + this.flows, server, 16509, ms);
    const conv = new LibvirtConversation(flow, {
      message: (c, m) => this.timeline.message(c, m),
      end: (c) => this.timeline.conversationEnd(c),
    });
    this.timeline.conversation(conv);
    return new Connection(this, conv);
  }

  /** A QEMU data connection: opened at `ms`, `bytes` sent, closed at `endMs`. */
  dataConnection(client: string, server: string, port: number, ms: number, endMs: number, bytes: number): StreamConsumer | undefined {
    const flow = this.flow(client, 50000 + this.flows, server, port, ms);
    const first = Uint8Array.of(0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3);
    const consumer = this.data.create(flow, first, 0);
    if (consumer) {
      const payload = new Uint8Array(bytes);
      payload.set(first);
      consumer.data(payload, 0, bytes, 0, 0, at(ms + 1), this.nextPacket());
      this.current.index = this.nextPacket();
      consumer.end('fin', at(endMs));
    }
    return consumer;
  }

  nextPacket(): number {
    return ++this.packet;
  }

  private flow(clientIp: string, clientPort: number, serverIp: string, serverPort: number, ms: number): FlowInfo {
    this.flows++;
    return { id: this.flows, client: { ip: clientIp, port: clientPort }, server: { ip: serverIp, port: serverPort }, firstSeen: at(ms), firstPacket: this.nextPacket(), handshakeSeen: true };
  }
}

class Connection {
  private serial = 0;
  private readonly offsets = [0, 0];
  constructor(private readonly scenario: Scenario, readonly conv: LibvirtConversation) {}

  private send(dir: 0 | 1, bytes: Uint8Array, ms: number): void {
    this.conv.data(bytes, 0, bytes.length, dir, this.offsets[dir], at(ms), this.scenario.nextPacket());
    this.offsets[dir] += bytes.length;
  }

  /** CALL at `ms`, REPLY at `replyMs` (undefined: never answered); error = reply with status ERROR. */
  call(procedure: number, ms: number, replyMs: number | undefined, args: Uint8Array = new Uint8Array(0), ret: Uint8Array = new Uint8Array(0), error?: string): this {
    const serial = this.serial++;
    this.send(0, rpcMessage({ procedure, type: MessageType.CALL, serial }, args), ms);
    if (replyMs === undefined) return this;
    const payload = error === undefined ? ret : new XdrWriter().int(1).int(10).optString(error).int(2).uint(0).optString(undefined).optString(undefined).optString(undefined).int(0).int(0).uint(0).bytes();
    this.send(1, rpcMessage({ procedure, type: MessageType.REPLY, serial, status: error === undefined ? 0 : 1 }, payload), replyMs);
    return this;
  }

  open(ms: number): this {
    return this.call(1, ms, ms + 1, new XdrWriter().optString('qemu:///system').uint(0).bytes());
  }

  close(ms: number): this {
    this.call(2, ms, ms + 1);
    this.conv.end('fin', at(ms + 2));
    return this;
  }
}

const domainXml = (name: string) => `<domain type='kvm'><name>${name}</name><uuid>00000000-0000-4000-8000-00000000000${name.length}</uuid></domain>`;

function params(entries: [string, 'string' | 'ullong', string | number][]): XdrWriter {
  const w = new XdrWriter().uint(entries.length);
  for (const [field, type, value] of entries) {
    w.string(field);
    if (type === 'string') w.int(7).string(value as string);
    else w.int(4).hyper(value as number);
  }
  return w;
}

const prepare3Args = (name: string, flags: number) => params([['destination_xml', 'string', domainXml(name)], ['destination_name', 'string', name]]).opaque(new Uint8Array(8)).uint(flags).bytes();
const prepare3Ret = (uri: string) => new XdrWriter().opaque(new Uint8Array(4)).optString(uri).bytes();
const finish3Args = (name: string, flags: number, cancelled = 0) => params([['destination_name', 'string', name]]).opaque(new Uint8Array(4)).uint(flags).int(cancelled).bytes();
const finish3Ret = (name: string) => new XdrWriter().string(name).fixed(new Uint8Array(16).fill(7)).int(5).opaque(new Uint8Array(4)).bytes();

/** The p2p conversation libvirt 9 has on the wire: open, PREPARE3_PARAMS, data, FINISH3_PARAMS, close. */
function p2p(s: Scenario, src: string, dst: string, t: number, name: string, port: number, flags = LIVE | P2P): Connection {
  const c = s.connect(src, dst, t).open(t + 1);
  c.call(303, t + 5, t + 50, prepare3Args(name, flags), prepare3Ret(`tcp:${dst}:${port}`));
  s.dataConnection(src, dst, port, t + 60, t + 300, 1_000_000);
  c.call(306, t + 310, t + 330, finish3Args(name, flags), finish3Ret(name));
  return c;
}

test('back-to-back migrations in both directions: each emitted as soon as its cleanup ends', () => {
  const s = new Scenario();
  p2p(s, '10.0.0.1', '10.0.0.2', 0, 'alpha', 49152).close(400);
  assert.equal(s.emitted.length, 1, 'the first migration is out before the second starts');
  p2p(s, '10.0.0.2', '10.0.0.1', 1000, 'alpha', 49152).close(1400);
  assert.equal(s.emitted.length, 2);
  s.timeline.finish();
  assert.equal(s.timeline.records.length, 2);
  const [a, b] = s.emitted;
  assert.deepEqual([a.source, a.destination, b.source, b.destination], ['10.0.0.1', '10.0.0.2', '10.0.0.2', '10.0.0.1']);
  for (const r of [a, b]) {
    assert.equal(r.outcome, 'completed');
    assert.equal(r.mode, 'p2p');
    assert.equal(r.domain, 'alpha');
    assert.deepEqual(Object.keys(r.phases), ['remoteConnect', 'preparation', 'transfer', 'finish', 'cleanup']);
    assert.equal(r.transfer?.bytes, 1_000_000);
  }
  assert.equal(a.phases.transfer?.start, '2000.060000000');
  assert.equal(b.phases.transfer?.start, '2001.060000000', 'the second migration links its own data connection');
  assert.equal(b.migrationTimeSec, 0.401);
});

test('concurrent migrations to one destination: data connections linked by migrate-URI port', () => {
  const s = new Scenario();
  const c1 = s.connect('10.0.0.1', '10.0.0.9', 0).open(1);
  const c2 = s.connect('10.0.0.2', '10.0.0.9', 2).open(3);
  c1.call(303, 5, 50, prepare3Args('one', LIVE | P2P), prepare3Ret('tcp:10.0.0.9:49152'));
  c2.call(303, 6, 52, prepare3Args('two', LIVE | P2P), prepare3Ret('tcp:10.0.0.9:49153'));
  // the second migration's data connection opens first
  s.dataConnection('10.0.0.2', '10.0.0.9', 49153, 55, 500, 2_000_000);
  s.dataConnection('10.0.0.1', '10.0.0.9', 49152, 60, 300, 1_000_000);
  c1.call(306, 310, 330, finish3Args('one', LIVE | P2P), finish3Ret('one')).close(340);
  c2.call(306, 510, 530, finish3Args('two', LIVE | P2P), finish3Ret('two')).close(540);
  s.timeline.finish();
  const byDomain = Object.fromEntries(s.emitted.map((r) => [r.domain, r]));
  assert.equal(byDomain['one'].transfer?.bytes, 1_000_000);
  assert.match(byDomain['one'].transfer?.connection ?? '', /^10\.0\.0\.1:\d+ → 10\.0\.0\.9:49152$/);
  assert.equal(byDomain['two'].transfer?.bytes, 2_000_000);
  assert.equal(byDomain['two'].phases.transfer?.seconds, 0.445);
});

test('managed migration: the client drives both daemons (BEGIN3/PERFORM3/CONFIRM3 on the source)', () => {
  const s = new Scenario();
  const toSrc = s.connect('10.0.0.3', '10.0.0.1', 0).open(1);
  const toDst = s.connect('10.0.0.3', '10.0.0.2', 2).open(3);
  const dom = new XdrWriter().string('beta').fixed(new Uint8Array(16)).int(1).bytes();
  toSrc.call(302, 10, 20, new XdrWriter().fixed(dom).uint(0).uint(LIVE).bytes(), new XdrWriter().opaque(new Uint8Array(4)).string(domainXml('beta')).bytes());
  toDst.call(303, 25, 60, prepare3Args('beta', LIVE), prepare3Ret('tcp:10.0.0.2:49152'));
  toSrc.call(305, 65, 320);
  s.dataConnection('10.0.0.1', '10.0.0.2', 49152, 70, 310, 500_000);
  toDst.call(306, 325, 340, finish3Args('beta', LIVE), finish3Ret('beta'));
  toSrc.call(307, 345, 350);
  toDst.close(360);
  assert.equal(s.emitted.length, 0, 'not complete while the source connection is still open');
  toSrc.close(370);
  s.timeline.finish();
  assert.equal(s.emitted.length, 1);
  const r = s.emitted[0];
  assert.equal(r.mode, 'managed');
  assert.equal(r.source, '10.0.0.1');
  assert.equal(r.destination, '10.0.0.2');
  assert.equal(r.domain, 'beta');
  assert.equal(r.phases.cleanup?.end, '2000.371000000', 'cleanup ends with the last CONNECT_CLOSE reply');
  assert.equal(r.transfer?.bytes, 500_000);
});

test('old procedure set (v2: PREPARE2 / FINISH2) and an offline migration', () => {
  const s = new Scenario();
  const c = s.connect('10.0.0.1', '10.0.0.2', 0).open(1);
  const prepare2 = new XdrWriter().optString(undefined).hyper(P2P | OFFLINE).optString('gamma').hyper(0).string(domainXml('gamma')).bytes();
  c.call(108, 5, 40, prepare2, new XdrWriter().opaque(new Uint8Array(0)).optString('tcp:10.0.0.2:49160').bytes());
  s.dataConnection('10.0.0.1', '10.0.0.2', 49160, 45, 200, 300_000);
  const finish2 = new XdrWriter().string('gamma').opaque(new Uint8Array(0)).string('tcp:10.0.0.2:49160').hyper(P2P | OFFLINE).int(0).bytes();
  c.call(109, 210, 220, finish2, new XdrWriter().string('gamma').fixed(new Uint8Array(16)).int(-1).bytes());
  c.close(230);
  s.timeline.finish();
  const r = s.emitted[0];
  assert.equal(r.outcome, 'completed');
  assert.equal(r.live, false);
  assert.equal(r.domain, 'gamma');
  assert.equal(r.transfer?.migrateUri, 'tcp:10.0.0.2:49160');
  assert.deepEqual(Object.keys(r.phases), ['remoteConnect', 'preparation', 'transfer', 'finish', 'cleanup']);
});

test('cancelled (FINISH with cancelled=1 and an error reply) and incomplete (capture ends) migrations', () => {
  const s = new Scenario();
  const c = s.connect('10.0.0.1', '10.0.0.2', 0).open(1);
  c.call(303, 5, 50, prepare3Args('delta', LIVE | P2P), prepare3Ret('tcp:10.0.0.2:49152'));
  s.dataConnection('10.0.0.1', '10.0.0.2', 49152, 60, 100, 10_000);
  c.call(306, 110, 120, finish3Args('delta', LIVE | P2P, 1), new Uint8Array(0), 'migration job: canceled by client');
  c.close(130);
  const d = s.connect('10.0.0.1', '10.0.0.2', 1000).open(1001);
  d.call(303, 1005, 1050, prepare3Args('epsilon', LIVE | P2P), prepare3Ret('tcp:10.0.0.2:49152'));
  s.timeline.finish();
  assert.equal(s.emitted.length, 2);
  const [cancelled, incomplete] = s.emitted;
  assert.equal(cancelled.outcome, 'cancelled');
  assert.match(cancelled.reason ?? '', /canceled by client/);
  assert.equal(incomplete.outcome, 'incomplete');
  assert.match(incomplete.reason ?? '', /no FINISH/);
  assert.deepEqual(Object.keys(incomplete.phases), ['remoteConnect', 'preparation']);
  assert.equal(incomplete.migrationTimeSec, undefined);
});

test('live form (retain: false): migrations still come out in order, nothing is kept', () => {
  const s = new Scenario(false);
  for (let i = 0; i < 20; i++) p2p(s, '10.0.0.1', '10.0.0.2', i * 1000, `vm${i}`, 49152).close(i * 1000 + 400);
  s.timeline.finish();
  assert.deepEqual(s.emitted.map((r) => r.index), Array.from({ length: 20 }, (_, i) => i + 1));
  assert.ok(s.emitted.every((r) => r.outcome === 'completed' && r.transfer?.bytes === 1_000_000));
  assert.equal(s.timeline.records.length, 0);
  const internals = s.timeline as unknown as { states: Map<unknown, unknown>; migrations: unknown[]; dataFlows: unknown[] };
  assert.deepEqual([internals.states.size, internals.migrations.length, internals.dataFlows.length], [0, 0, 0]);
});

test('managed migration whose client reaches the source over a local socket: mode from the flags, source from the data connection', () => {
  const s = new Scenario();
  // virsh on 10.0.0.3 talks to the source daemon over a channel we do not see; only its
  // connection to the destination and the source's data connection are on the wire
  const c = s.connect('10.0.0.3', '10.0.0.2', 0).open(1);
  c.call(303, 5, 50, prepare3Args('zeta', LIVE), prepare3Ret('tcp:10.0.0.2:49152'));
  s.dataConnection('10.0.0.1', '10.0.0.2', 49152, 60, 300, 1_000_000);
  c.call(306, 310, 330, finish3Args('zeta', LIVE), finish3Ret('zeta')).close(400);
  s.timeline.finish();
  const r = s.emitted[0];
  assert.equal(r.mode, 'managed');
  assert.equal(r.source, '10.0.0.1');
  assert.equal(r.destination, '10.0.0.2');
  assert.equal(r.outcome, 'completed');
});
