// Bidirectional TCP flow table keyed by the 4-tuple, without building a key string per packet:
// a symmetric numeric hash selects a bucket, endpoints are compared as numbers. The previous
// packet's flow is checked first (a migration stream is long runs of one flow).
import type { DecodedPacket } from '../decode/packet';
import { TcpFlag } from '../decode/packet';
import { BufferBudget, DEFAULT_REASSEMBLY_LIMITS } from './reassembly';
import type { ProtocolDetector } from './stream-consumer';
import { TcpFlow } from './tcp-flow';

export interface ReassemblyLimits {
  maxBufferedPerDirection: number; // out-of-order bytes one direction may hold before giving up a hole
  maxBufferedTotal: number; // the same over all flows
}

function symmetricHash(p: DecodedPacket): number {
  const s = p.src;
  const d = p.dst;
  // XOR of both endpoints is the same for either direction.
  let h = (s[0] ^ d[0] ^ s[1] ^ d[1] ^ s[2] ^ d[2]) * 31 + (s[3] ^ d[3]);
  h = Math.imul(h | 0, 0x9e3779b1) ^ Math.imul(p.srcPort ^ p.dstPort, 0x85ebca6b);
  return h | 0;
}

export class FlowTable {
  readonly flows: TcpFlow[] = []; // every flow, in order of first packet
  private readonly buckets = new Map<number, TcpFlow[]>();
  private lastFlow: TcpFlow | undefined;
  private lastDirection = 0;
  readonly budget: BufferBudget;

  constructor(
    private readonly detectors: readonly ProtocolDetector[],
    limits: ReassemblyLimits = DEFAULT_REASSEMBLY_LIMITS,
    /** A protocol decoder threw (it is detached; the analysis goes on). */
    private readonly onProblem: (detail: string, packet: number) => void = () => {},
  ) {
    this.budget = new BufferBudget(limits.maxBufferedPerDirection, limits.maxBufferedTotal);
  }

  /** Count and reassemble one decoded TCP segment. */
  packet(p: DecodedPacket): void {
    let flow = this.lastFlow;
    let dir = flow ? flow.directionOf(p) : -1;
    if (dir < 0) {
      flow = this.lookup(p);
      dir = this.lastDirection;
    }
    // A new SYN on a closed connection's tuple, or one with another ISN, is a new connection
    // (port reuse, also when the old connection's end was not captured).
    if (flow && (p.tcpFlags & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN && flow.startsNewConnection(p.seq, dir)) {
      flow.finish(flow.endReason ?? 'fin', p.sec, p.ps);
      this.remove(p, flow);
      flow = undefined;
    }
    if (!flow) {
      flow = this.create(p);
      dir = flow.directionOf(p);
    }
    this.lastFlow = flow;
    flow.packet(p, dir as 0 | 1);
  }

  /** End of input: every flow still open ends with 'eof'. */
  finish(sec: number, ps: number): void {
    for (const flow of this.flows) if (!flow.ended) flow.finish('eof', sec, ps);
  }

  private lookup(p: DecodedPacket): TcpFlow | undefined {
    const bucket = this.buckets.get(symmetricHash(p));
    if (!bucket) return undefined;
    for (const flow of bucket) {
      const dir = flow.directionOf(p);
      if (dir >= 0) {
        this.lastDirection = dir;
        return flow;
      }
    }
    return undefined;
  }

  private create(p: DecodedPacket): TcpFlow {
    const flags = p.tcpFlags;
    // The SYN sender is the client; a SYN-ACK's receiver is; otherwise the first sender.
    const clientIsSource = !((flags & TcpFlag.SYN) !== 0 && (flags & TcpFlag.ACK) !== 0);
    const flow = new TcpFlow(this.flows.length + 1, p, clientIsSource, this.detectors, this.budget, this.onProblem);
    this.flows.push(flow);
    const key = symmetricHash(p);
    const bucket = this.buckets.get(key);
    if (bucket) bucket.push(flow);
    else this.buckets.set(key, [flow]);
    return flow;
  }

  private remove(p: DecodedPacket, flow: TcpFlow): void {
    const key = symmetricHash(p);
    const bucket = this.buckets.get(key);
    if (!bucket) return;
    const i = bucket.indexOf(flow);
    if (i >= 0) bucket.splice(i, 1);
    if (bucket.length === 0) this.buckets.delete(key);
    if (this.lastFlow === flow) this.lastFlow = undefined;
  }
}
