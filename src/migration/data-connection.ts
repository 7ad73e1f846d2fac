// Claims the QEMU migration data connection of a migration (a flow to the port named in the
// migrate URI, or any flow whose stream starts with the QEMU magic), records its timings and
// byte counts for the timeline, and passes the bytes on to the QEMU stream decoder (tee).
import type { Timestamp } from '../core/timestamp';
import { TcpFlag, type DecodedPacket } from '../decode/packet';
import type { PacketObserver } from '../flow/pipeline';
import type { Direction, FlowInfo, ProtocolDetector, StreamConsumer, StreamEndReason } from '../flow/stream-consumer';
import type { DataFlow, TimelineBuilder } from './timeline';

const QEVM = [0x51, 0x45, 0x56, 0x4d];
/** libvirt's default migration_port_min … migration_port_max (qemu.conf): a connection joined
 *  mid-stream (no QEVM at its start) to one of these ports is still a candidate. */
export const LIBVIRT_MIGRATION_PORTS = [49152, 49215] as const;

export function startsWithQemuMagic(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === QEVM[0] && b[1] === QEVM[1] && b[2] === QEVM[2] && b[3] === QEVM[3];
}

/** Remembers the number of the packet being processed (end() has none), and watches the data
 *  connections' FIN/RST packets: the transfer ends at the packet that closes the connection, even
 *  when reassembly cannot deliver up to the FIN (snaplen-cut captures) and ends the flow only at
 *  the end of the capture. Put it first among the pipeline's observers. */
export class CurrentPacket implements PacketObserver {
  index = 0;
  private readonly watched: { data: DataFlow; fin: [boolean, boolean]; timeline: TimelineBuilder }[] = [];

  watch(data: DataFlow, timeline: TimelineBuilder): void {
    this.watched.push({ data, fin: [false, false], timeline });
  }

  packet(p: DecodedPacket): void {
    this.index = p.index;
    if ((p.tcpFlags & (TcpFlag.FIN | TcpFlag.RST)) === 0 || this.watched.length === 0 || !p.isTcp) return;
    for (let i = 0; i < this.watched.length; i++) {
      const w = this.watched[i];
      const { client, server } = w.data.flow;
      const fromClient = p.srcPort === client.port && p.dstPort === server.port;
      if (!fromClient && !(p.srcPort === server.port && p.dstPort === client.port)) continue;
      if (p.srcText() !== (fromClient ? client.ip : server.ip)) continue;
      const rst = (p.tcpFlags & TcpFlag.RST) !== 0;
      w.fin[fromClient ? 0 : 1] = true;
      if (rst || (w.fin[0] && w.fin[1])) {
        w.data.closeAt = p.at();
        w.data.closePacket = p.index;
        this.watched.splice(i, 1);
        w.timeline.dataFlowEnded(w.data, rst ? 'rst' : 'fin');
      }
      return;
    }
  }
}

class DataConsumer implements StreamConsumer {
  constructor(private readonly flowData: DataFlow, private readonly timeline: TimelineBuilder, private readonly current: CurrentPacket, private readonly inner: StreamConsumer | undefined) {}

  data(buf: Uint8Array, start: number, end: number, dir: Direction, streamOffset: number, at: Timestamp, packet: number): void {
    this.flowData.bytes[dir] += end - start;
    this.flowData.lastAt = at;
    this.flowData.lastPacket = packet;
    this.inner?.data(buf, start, end, dir, streamOffset, at, packet);
  }

  gap(dir: Direction, streamOffset: number, length: number, at: Timestamp): void {
    this.flowData.bytes[dir] += length; // the bytes crossed the wire, we just did not see them
    this.inner?.gap(dir, streamOffset, length, at);
  }

  end(reason: StreamEndReason, at: Timestamp): void {
    if (reason !== 'eof') {
      this.flowData.lastAt = at;
      this.flowData.lastPacket = this.current.index;
    }
    this.inner?.end(reason, at);
    this.timeline.dataFlowEnded(this.flowData, reason);
  }
}

export function dataConnectionDetector(timeline: TimelineBuilder, current: CurrentPacket, qemuDetectors: readonly ProtocolDetector[] = []): ProtocolDetector {
  return {
    name: 'migration-data',
    create(flow: FlowInfo, firstBytes: Uint8Array, dir: Direction): StreamConsumer | undefined {
      let inner: StreamConsumer | undefined;
      for (const d of qemuDetectors) if ((inner = d.create(flow, firstBytes, dir))) break;
      const qemuMagic = dir === 0 && startsWithQemuMagic(firstBytes);
      const inRange = flow.server.port >= LIBVIRT_MIGRATION_PORTS[0] && flow.server.port <= LIBVIRT_MIGRATION_PORTS[1];
      if (!inner && !qemuMagic && !inRange && !timeline.expectsDataPort(flow.server.ip, flow.server.port)) return undefined;
      const data: DataFlow = { flow, lastAt: flow.firstSeen, lastPacket: flow.firstPacket, bytes: [0, 0], qemuMagic };
      timeline.dataFlowStarted(data);
      current.watch(data, timeline);
      return new DataConsumer(data, timeline, current, inner);
    },
  };
}
