// Claims the QEMU migration data connection of a migration (a flow to the port named in the
// migrate URI, or any flow whose stream starts with the QEMU magic), records its timings and
// byte counts for the timeline, and passes the bytes on to the QEMU stream decoder (tee).
import type { Timestamp } from '../core/timestamp';
import type { PacketObserver } from '../flow/pipeline';
import type { Direction, FlowInfo, ProtocolDetector, StreamConsumer, StreamEndReason } from '../flow/stream-consumer';
import type { DataFlow, TimelineBuilder } from './timeline';

const QEVM = [0x51, 0x45, 0x56, 0x4d];

export function startsWithQemuMagic(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === QEVM[0] && b[1] === QEVM[1] && b[2] === QEVM[2] && b[3] === QEVM[3];
}

/** Remembers the number of the packet being processed, so end() (which has no packet number)
 *  can name the packet that closed a connection. Put it first among the pipeline's observers. */
export class CurrentPacket implements PacketObserver {
  index = 0;
  packet(p: { index: number }): void {
    this.index = p.index;
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
    this.flowData.end = reason;
    this.flowData.lastAt = at;
    this.flowData.lastPacket = this.current.index;
    this.inner?.end(reason, at);
    this.timeline.dataFlowEnded(this.flowData);
  }
}

export function dataConnectionDetector(timeline: TimelineBuilder, current: CurrentPacket, qemuDetectors: readonly ProtocolDetector[] = []): ProtocolDetector {
  return {
    name: 'migration-data',
    create(flow: FlowInfo, firstBytes: Uint8Array, dir: Direction): StreamConsumer | undefined {
      let inner: StreamConsumer | undefined;
      for (const d of qemuDetectors) if ((inner = d.create(flow, firstBytes, dir))) break;
      const qemuMagic = dir === 0 && startsWithQemuMagic(firstBytes);
      if (!inner && !qemuMagic && !timeline.expectsDataPort(flow.server.ip, flow.server.port)) return undefined;
      const data: DataFlow = { flow, lastAt: flow.firstSeen, lastPacket: flow.firstPacket, bytes: [0, 0], qemuMagic };
      timeline.dataFlowStarted(data);
      return new DataConsumer(data, timeline, current, inner);
    },
  };
}
