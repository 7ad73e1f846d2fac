// Finds migrations in the libvirt conversations of a capture and places their phases with the
// marker table (markers.ts). Incremental: a migration is emitted (callback) as soon as its
// cleanup has ended and its data connection is closed; finish() emits the rest at end of input.
import { compareTimestamps, formatTimestamp, secondsBetween, type Timestamp } from '../core/timestamp';
import type { FlowInfo, StreamEndReason } from '../flow/stream-consumer';
import type { LibvirtConversation, TunnelStream } from '../protocols/libvirt/conversation';
import type { OpaqueConnection } from '../protocols/libvirt/detector';
import { MessageStatus, MessageType, procedureName, type LibvirtMessage } from '../protocols/libvirt/rpc';
import { REMOTE_PROGRAM } from '../protocols/libvirt/procedures.generated';
import { KVM_PHASE_MARKERS, PROCEDURE_GROUPS, type MarkerSource, type ProcedureGroup } from './markers';
import type { MigrationMode, MigrationOutcome, MigrationRecord, PhaseName, PhaseSpan } from './record';

/** A TCP connection that may carry migration data (QEMU stream), with its timings. */
export interface DataFlow {
  flow: FlowInfo;
  lastAt: Timestamp;
  lastPacket: number;
  bytes: [number, number];
  end?: StreamEndReason;
  /** the packet that closed the connection (second FIN, or RST), when seen */
  closeAt?: Timestamp;
  closePacket?: number;
  /** the stream starts with the QEMU magic "QEVM" */
  qemuMagic: boolean;
}

/** One marker instant: time and the packet that carries it. */
export interface MarkerInstant {
  at: Timestamp;
  packet?: number;
  msg?: LibvirtMessage;
  conv?: LibvirtConversation;
}

const VIR_MIGRATE_LIVE = 1;
const VIR_MIGRATE_PEER2PEER = 2;
const VIR_MIGRATE_TUNNELLED = 4;
const VIR_MIGRATE_OFFLINE = 1 << 10;
const VIR_MIGRATE_POSTCOPY = 1 << 15;

const groupOf = new Map<string, ProcedureGroup[]>();
for (const [group, names] of Object.entries(PROCEDURE_GROUPS) as [ProcedureGroup, readonly string[]][]) {
  for (const name of names) groupOf.set(name, [...(groupOf.get(name) ?? []), group]);
}

function groupsOfMessage(msg: LibvirtMessage): ProcedureGroup[] | undefined {
  if (msg.program !== REMOTE_PROGRAM.number) return undefined;
  return groupOf.get(REMOTE_PROGRAM.procedures.get(msg.procedure) ?? '');
}

const isCall = (m: LibvirtMessage): boolean => m.type === MessageType.CALL || m.type === MessageType.CALL_WITH_FDS;
const isReply = (m: LibvirtMessage): boolean => m.type === MessageType.REPLY || m.type === MessageType.REPLY_WITH_FDS;

/** Per conversation: the messages that markers can refer to (a handful per migration). */
interface ConversationState {
  conv: LibvirtConversation;
  relevant: LibvirtMessage[];
  migrations: Migration[];
  ended: boolean;
}

interface Migration {
  id: number;
  control: ConversationState; // the connection to the destination daemon (PREPARE, FINISH)
  fromIndex: number; // first index of control.relevant belonging to this migration
  toIndex: number; // exclusive; Infinity while open
  prepareCall: LibvirtMessage; // the anchor: the PREPARE call, or the FINISH call when joined late
  /** The capture starts after the PREPARE (connection joined mid-way): anchored on FINISH. */
  joinedLate: boolean;
  source?: { state: ConversationState; fromIndex: number }; // managed: the client's connection to the source
  dataFlow?: DataFlow;
  emitted: boolean;
}

export interface TimelineOptions {
  capture: string;
  tsDigits?: number;
  onMigration?: (record: MigrationRecord, detail: MigrationDetail) => void;
  /** false: do not keep emitted records, and forget finished conversations, migrations and data
   *  connections (bounded memory for live capture; records only reach onMigration). Default true. */
  retain?: boolean;
}

/** What a record was built from (for --timeline, tests, and enrichment with QEMU figures). */
export interface MigrationDetail {
  markers: MarkerMessage[];
  dataFlow?: DataFlow;
  tunnel?: TunnelStream;
  controlFlow: FlowInfo;
}

/** A marker message for the text sequence diagram. */
export interface MarkerMessage {
  at: Timestamp;
  packet: number;
  from: string;
  to: string;
  program: string;
  procedure: string;
  type: number;
  serial: number;
  status: number;
  note?: string;
}

export class TimelineBuilder {
  private readonly states = new Map<LibvirtConversation, ConversationState>();
  private readonly migrations: Migration[] = [];
  private readonly dataFlows: DataFlow[] = [];
  readonly opaque: OpaqueConnection[] = [];
  readonly records: MigrationRecord[] = [];
  readonly details: MigrationDetail[] = [];
  private emittedCount = 0;
  tsDigits: number;

  constructor(private readonly options: TimelineOptions) {
    this.tsDigits = options.tsDigits ?? 9;
  }

  // ---- inputs --------------------------------------------------------------------------

  conversation(conv: LibvirtConversation): void {
    this.states.set(conv, { conv, relevant: [], migrations: [], ended: false });
  }

  message(conv: LibvirtConversation, msg: LibvirtMessage): void {
    let state = this.states.get(conv);
    if (!state) this.conversation(conv), (state = this.states.get(conv)!);
    const groups = groupsOfMessage(msg);
    // STREAM messages (tunnelled data) are summarised per stream in conv.tunnels, not kept.
    if (!groups || msg.type === MessageType.STREAM || msg.type === MessageType.STREAM_HOLE) return;
    state.relevant.push(msg);
    if (groups.includes('prepare') && isCall(msg)) this.startMigration(state, msg, false);
    // A FINISH without a PREPARE before it on this connection: the capture began mid-migration.
    else if (groups.includes('finish') && isCall(msg) && !state.migrations.some((m) => !m.emitted && m.toIndex === Infinity)) {
      this.startMigration(state, msg, true);
    }
    if (groups.includes('connectClose') && isReply(msg)) this.tryEmitAll();
  }

  conversationEnd(conv: LibvirtConversation): void {
    const state = this.states.get(conv);
    if (state) state.ended = true;
    this.tryEmitAll();
  }

  /** Ports named in migrate URIs of migrations still waiting for their data connection. */
  expectsDataPort(serverIp: string, port: number): boolean {
    return this.migrations.some((m) => !m.dataFlow && !m.emitted && m.control.conv.flow.server.ip === serverIp && this.dataPort(m) === port);
  }

  dataFlowStarted(data: DataFlow): void {
    this.dataFlows.push(data);
  }

  dataFlowEnded(data: DataFlow, reason: StreamEndReason): void {
    data.end ??= reason;
    this.tryEmitAll();
  }

  opaqueConnection(conn: OpaqueConnection): void {
    this.opaque.push(conn);
  }

  /** End of input: everything not yet emitted is emitted now (incomplete where it is). */
  finish(): MigrationRecord[] {
    for (const m of this.migrations) if (!m.emitted) this.emit(m);
    return this.records;
  }

  // ---- migration detection ---------------------------------------------------------------

  private startMigration(state: ConversationState, prepareCall: LibvirtMessage, joinedLate: boolean): void {
    const previous = state.migrations[state.migrations.length - 1];
    const fromIndex = previous ? this.closeRange(previous) : 0;
    const m: Migration = { id: this.migrations.length + 1, control: state, fromIndex, toIndex: Infinity, prepareCall, joinedLate, emitted: false };
    state.migrations.push(m);
    this.migrations.push(m);
  }

  /** Back-to-back migrations on one connection: the earlier one ends where the next PREPARE starts. */
  private closeRange(m: Migration): number {
    m.toIndex = m.control.relevant.length - 1; // the new PREPARE call is the last element
    return m.toIndex;
  }

  private messagesOf(m: Migration): { msg: LibvirtMessage; state: ConversationState }[] {
    const out: { msg: LibvirtMessage; state: ConversationState }[] = [];
    const end = Math.min(m.toIndex, m.control.relevant.length);
    for (let i = m.fromIndex; i < end; i++) out.push({ msg: m.control.relevant[i], state: m.control });
    if (m.source) for (const msg of m.source.state.relevant.slice(m.source.fromIndex)) out.push({ msg, state: m.source.state });
    out.sort((a, b) => compareTimestamps(a.msg.at, b.msg.at) || a.msg.packet - b.msg.packet);
    return out;
  }

  /** Managed migration: the client that called PREPARE on the destination also drives the
   *  source daemon over another connection (BEGIN3 / PERFORM*). */
  private findSourceConversation(m: Migration): void {
    if (m.source) return;
    const client = m.control.conv.flow.client.ip;
    for (const state of this.states.values()) {
      if (state === m.control || state.conv.flow.client.ip !== client || state.conv.flow.server.ip === m.control.conv.flow.server.ip) continue;
      // v3: the BEGIN just before this PREPARE; v2 (no BEGIN): the PERFORM just after it
      let index = -1;
      state.relevant.forEach((msg, i) => {
        if (!isCall(msg) || !groupsOfMessage(msg)?.includes('sourceSide')) return;
        const before = compareTimestamps(msg.at, m.prepareCall.at) <= 0;
        if (before ? secondsBetween(msg.at, m.prepareCall.at) < 600 : index < 0 && secondsBetween(m.prepareCall.at, msg.at) < 600) index = i;
      });
      if (index >= 0) {
        m.source = { state, fromIndex: index };
        return;
      }
    }
  }

  private dataPort(m: Migration): number | undefined {
    const uri = this.migrateUri(m);
    const port = uri ? /:(\d+)(?:[/?]|$)/.exec(uri)?.[1] : undefined;
    return port ? Number(port) : undefined;
  }

  private migrateUri(m: Migration): string | undefined {
    const reply = this.find(m, 'prepare', 'REPLY', 'first');
    const fromReply = reply?.msg?.body?.['uriOut'];
    if (typeof fromReply === 'string') return fromReply;
    const fromCall = m.prepareCall.body?.['migrateUri'] ?? m.prepareCall.body?.['uriIn'];
    return typeof fromCall === 'string' ? fromCall : undefined;
  }

  private isTunnelled(m: Migration): boolean {
    return groupsOfMessage(m.prepareCall)?.includes('tunnelPrepare') ?? false;
  }

  private tunnelOf(m: Migration): TunnelStream | undefined {
    return m.control.conv.tunnels.get(`0:${m.prepareCall.serial}`) ?? m.control.conv.tunnels.get(`1:${m.prepareCall.serial}`);
  }

  /** The QEMU data connection: by the port of the migrate URI, else by timing (the first flow
   *  between the two hosts that starts after the PREPARE reply and carries the QEMU magic). */
  private linkDataFlow(m: Migration): DataFlow | undefined {
    if (m.dataFlow) return m.dataFlow;
    const dst = m.control.conv.flow.server.ip;
    const port = this.dataPort(m);
    const after = m.joinedLate ? { sec: 0, ps: 0 } : m.prepareCall.at; // joined late: it opened before the FINISH
    const claimed = new Set(this.migrations.map((x) => x.dataFlow));
    const candidates = this.dataFlows.filter((d) => !claimed.has(d) && d.flow.server.ip === dst && compareTimestamps(d.flow.firstSeen, after) >= 0);
    const byPort = candidates.find((d) => port !== undefined && d.flow.server.port === port);
    const byTiming = candidates.find((d) => d.qemuMagic);
    m.dataFlow = byPort ?? byTiming;
    return m.dataFlow;
  }

  // ---- emission ------------------------------------------------------------------------------

  private tryEmitAll(): void {
    for (const m of this.migrations) if (!m.emitted && this.isComplete(m)) this.emit(m);
    if (this.options.retain === false) this.prune();
  }

  private isComplete(m: Migration): boolean {
    this.findSourceConversation(m);
    const closed = m.control.ended || this.find(m, 'connectClose', 'REPLY', 'last') !== undefined || m.toIndex !== Infinity;
    if (!closed) return false;
    if (m.source && !(m.source.state.ended || m.source.state.relevant.some((x) => isReply(x) && groupsOfMessage(x)?.includes('connectClose')))) return false;
    const data = this.isTunnelled(m) ? undefined : this.linkDataFlow(m);
    return !data || data.end !== undefined;
  }

  private find(m: Migration, group: ProcedureGroup, type: 'CALL' | 'REPLY', which: 'first' | 'last'): MarkerInstant | undefined {
    const list = this.messagesOf(m).filter(({ msg }) => (type === 'CALL' ? isCall(msg) : isReply(msg)) && groupsOfMessage(msg)?.includes(group));
    const hit = which === 'first' ? list[0] : list[list.length - 1];
    return hit ? { at: hit.msg.at, packet: hit.msg.packet, msg: hit.msg, conv: hit.state.conv } : undefined;
  }

  private resolve(m: Migration, source: MarkerSource, placed: Partial<Record<PhaseName, { end: MarkerInstant }>>): MarkerInstant | undefined {
    switch (source.kind) {
      case 'controlOpen': {
        const flow = m.control.conv.flow;
        // Only the first migration on a connection owns its opening, and only a seen SYN is an opening.
        return m.fromIndex === 0 && flow.handshakeSeen ? { at: flow.firstSeen, packet: flow.firstPacket } : undefined;
      }
      case 'message':
        return this.find(m, source.group, source.type, source.which);
      case 'dataFirst': {
        if (this.isTunnelled(m)) {
          const t = this.tunnelOf(m);
          return t ? { at: t.firstAt, packet: t.firstPacket } : undefined;
        }
        const d = this.linkDataFlow(m);
        return d ? { at: d.flow.firstSeen, packet: d.flow.firstPacket } : undefined;
      }
      case 'dataLast': {
        if (this.isTunnelled(m)) {
          const t = this.tunnelOf(m);
          return t ? { at: t.lastAt, packet: t.lastPacket } : undefined;
        }
        const d = this.linkDataFlow(m);
        if (d?.closeAt) return { at: d.closeAt, packet: d.closePacket };
        return d ? { at: d.lastAt, packet: d.lastPacket } : undefined;
      }
      case 'phaseEnd':
        return placed[source.phase]?.end;
      case 'controlClose':
        return m.control.ended && m.toIndex === Infinity ? { at: m.control.conv.times.lastAt } : undefined;
    }
  }

  private emit(m: Migration): void {
    m.emitted = true;
    this.findSourceConversation(m);
    const fmt = (t: Timestamp): string => formatTimestamp(t, this.tsDigits);
    const placed: Partial<Record<PhaseName, { start: MarkerInstant; end: MarkerInstant }>> = {};
    const phases: Partial<Record<PhaseName, PhaseSpan>> = {};
    for (const rule of KVM_PHASE_MARKERS) {
      const start = firstDefined(rule.start, (s) => this.resolve(m, s, placed));
      const end = firstDefined(rule.end, (s) => this.resolve(m, s, placed));
      if (!start || !end || compareTimestamps(end.at, start.at) < 0) continue;
      placed[rule.phase] = { start, end };
      phases[rule.phase] = { start: fmt(start.at), end: fmt(end.at), seconds: secondsBetween(start.at, end.at), startPacket: start.packet, endPacket: end.packet };
    }

    const control = m.control.conv.flow;
    const flags = Number(m.prepareCall.body?.['flags'] ?? 0);
    const tunnelled = this.isTunnelled(m) || (flags & VIR_MIGRATE_TUNNELLED) !== 0;
    // Without VIR_MIGRATE_PEER2PEER a client drives the migration (managed), even when its
    // connection to the source daemon is not on the wire (e.g. a local unix socket).
    const flagsKnown = m.prepareCall.body?.['flags'] !== undefined;
    const mode: MigrationMode = m.source
      ? 'managed'
      : tunnelled
        ? 'tunnelled'
        : (flags & VIR_MIGRATE_PEER2PEER) !== 0
          ? 'p2p'
          : flagsKnown
            ? 'managed'
            : 'unknown';
    const prepareReply = this.find(m, 'prepare', 'REPLY', 'first');
    const finishCall = this.find(m, 'finish', 'CALL', 'first');
    const finishReply = this.find(m, 'finish', 'REPLY', 'first');
    const abort = this.find(m, 'abort', 'CALL', 'first');
    const warnings: string[] = [];

    let outcome: MigrationOutcome = 'completed';
    let reason: string | undefined;
    const errorText = (msg: LibvirtMessage | undefined, what: string): string =>
      `${what} failed on ${control.server.ip}: ${msg?.error?.message ?? 'error reply (message not decoded)'}${msg?.error ? ` (code ${msg.error.code})` : ''}`;
    if (prepareReply?.msg && prepareReply.msg.status === MessageStatus.ERROR) {
      outcome = 'failed';
      reason = errorText(prepareReply.msg, procedureName(prepareReply.msg.program, prepareReply.msg.procedure));
    } else if (finishReply?.msg && finishReply.msg.status === MessageStatus.ERROR) {
      outcome = Number(finishCall?.msg?.body?.['cancelled'] ?? 0) ? 'cancelled' : 'failed';
      reason = errorText(finishReply.msg, procedureName(finishReply.msg.program, finishReply.msg.procedure));
    } else if (finishCall?.msg && Number(finishCall.msg.body?.['cancelled'] ?? 0)) {
      outcome = 'cancelled';
      reason = 'the source reported the migration as cancelled in FINISH';
    } else if (!prepareReply && !m.joinedLate) {
      outcome = 'incomplete';
      reason = 'no reply to PREPARE in the capture';
    } else if (!finishReply) {
      outcome = 'incomplete';
      reason = finishCall ? 'no reply to FINISH in the capture' : 'no FINISH call in the capture';
    }
    if (abort && outcome === 'completed') warnings.push('DOMAIN_ABORT_JOB was called but the migration completed');
    else if (abort && outcome !== 'completed') outcome = 'cancelled';
    const tunnel = this.isTunnelled(m) ? this.tunnelOf(m) : undefined;
    if (tunnel?.endStatus === MessageStatus.ERROR && outcome === 'completed') {
      outcome = 'failed';
      reason = 'the tunnelled stream was aborted (STREAM ERROR)';
    }
    if (m.control.conv.unanswered.length > 0) warnings.push(`${m.control.conv.unanswered.length} call(s) without a reply on ${m.control.conv.client} → ${m.control.conv.server}`);
    if (m.joinedLate) warnings.push('the capture starts after the PREPARE call: remote connect and preparation not seen, migration time unknown');
    else if (!phases.remoteConnect) warnings.push('remote connect not seen (connection opened before the capture, or reused)');

    const domainName = pick(m, ['domainName', 'dname'], (b) => (b['dom'] as { name?: string } | undefined)?.name);
    const uuid = pick(m, ['domainUuid'], (b) => (b['dom'] as { uuid?: string } | undefined)?.uuid);
    const data = tunnelled ? undefined : this.linkDataFlow(m);
    // the migration stream flows client (source) → server (destination); the other direction is the return path
    const transferBytes = tunnel ? tunnel.bytes : data ? data.bytes[0] : undefined;
    const transfer = phases.transfer;
    const startInstant = placed.remoteConnect?.start ?? placed.preparation?.start ?? placed.transfer?.start ?? { at: m.prepareCall.at };
    const endInstant = placed.cleanup?.end;
    const migrateUri = this.migrateUri(m);

    const record: MigrationRecord = {
      capture: this.options.capture,
      index: ++this.emittedCount,
      domain: domainName,
      uuid,
      // managed: the daemon the client drives; otherwise the sender of the migration data
      source: m.source ? m.source.state.conv.flow.server.ip : data ? data.flow.client.ip : control.client.ip,
      destination: control.server.ip,
      mode,
      live: m.prepareCall.body ? (flags & VIR_MIGRATE_LIVE) !== 0 && (flags & VIR_MIGRATE_OFFLINE) === 0 : undefined,
      postcopy: m.prepareCall.body ? (flags & VIR_MIGRATE_POSTCOPY) !== 0 : undefined,
      outcome,
      reason,
      tsDigits: this.tsDigits,
      start: fmt(startInstant.at),
      end: endInstant ? fmt(endInstant.at) : undefined,
      phases,
      migrationTimeSec: endInstant && !m.joinedLate ? secondsBetween(startInstant.at, endInstant.at) : undefined,
      transfer:
        transferBytes !== undefined
          ? {
              bytes: transferBytes,
              throughputBps: transfer && transfer.seconds > 0 ? transferBytes / transfer.seconds : 0,
              connection: tunnel
                ? `tunnelled in ${m.control.conv.client} → ${m.control.conv.server}`
                : data
                  ? `${data.flow.client.ip}:${data.flow.client.port} → ${data.flow.server.ip}:${data.flow.server.port}`
                  : undefined,
              migrateUri,
            }
          : undefined,
      warnings,
    };
    const detail: MigrationDetail = { markers: this.markerMessages(m), dataFlow: data, tunnel, controlFlow: control };
    if (this.options.retain !== false) {
      this.records.push(record);
      this.details.push(detail);
    }
    this.options.onMigration?.(record, detail);
  }

  /** Live capture: drop what can no longer contribute to a migration. */
  private prune(): void {
    const pending = this.migrations.filter((m) => !m.emitted);
    const needed = new Set<ConversationState>(pending.flatMap((m) => (m.source ? [m.control, m.source.state] : [m.control])));
    for (const [conv, state] of this.states) {
      if (state.ended && !needed.has(state)) this.states.delete(conv);
    }
    const kept = this.migrations.filter((m) => !m.emitted || this.states.has(m.control.conv));
    this.migrations.splice(0, this.migrations.length, ...kept);
    const claimed = new Set(pending.map((m) => m.dataFlow));
    const flows = this.dataFlows.filter((d) => d.end === undefined || claimed.has(d) || (pending.length > 0 && !this.migrations.some((m) => m.dataFlow === d)));
    this.dataFlows.splice(0, this.dataFlows.length, ...flows);
  }

  private markerMessages(m: Migration): MarkerMessage[] {
    return this.messagesOf(m).map(({ msg, state }) => {
      const flow = state.conv.flow;
      const c = `${flow.client.ip}:${flow.client.port}`;
      const s = `${flow.server.ip}:${flow.server.port}`;
      return {
        at: msg.at,
        packet: msg.packet,
        from: msg.dir === 0 ? c : s,
        to: msg.dir === 0 ? s : c,
        program: 'remote',
        procedure: procedureName(msg.program, msg.procedure),
        type: msg.type,
        serial: msg.serial,
        status: msg.status,
        note: msg.error?.message,
      };
    });
  }
}

function firstDefined<T, R>(items: readonly T[], f: (item: T) => R | undefined): R | undefined {
  for (const item of items) {
    const r = f(item);
    if (r !== undefined) return r;
  }
  return undefined;
}

/** First string found in the migration's decoded bodies under one of `keys` (or via `extract`). */
function pick(m: Migration, keys: string[], extract: (body: Record<string, unknown>) => string | undefined): string | undefined {
  const bodies: Record<string, unknown>[] = [];
  const push = (list: LibvirtMessage[]) => list.forEach((msg) => msg.body && bodies.push(msg.body));
  push(m.control.relevant.slice(m.fromIndex, Math.min(m.toIndex, m.control.relevant.length)));
  if (m.source) push(m.source.state.relevant.slice(m.source.fromIndex));
  for (const body of bodies) {
    for (const key of keys) if (typeof body[key] === 'string' && body[key]) return body[key] as string;
    const v = extract(body);
    if (v) return v;
  }
  return undefined;
}
