// Bad input never throws: random bytes, random holes and random payloads for every decoder
// end in messages, problems or "damaged" marks, never in an exception.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { FlowInfo } from '../../../src/flow/stream-consumer';
import { LibvirtConversation } from '../../../src/protocols/libvirt/conversation';
import { decodePayload } from '../../../src/protocols/libvirt/payloads';
import { REMOTE_PROGRAM } from '../../../src/protocols/libvirt/procedures.generated';
import { MessageType } from '../../../src/protocols/libvirt/rpc';
import { concat, rpcMessage } from './rpc-builder';

const flow: FlowInfo = { id: 1, client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port: 16509 }, firstSeen: { sec: 1, ps: 0 }, firstPacket: 1, handshakeSeen: true };

test('conversation: random bytes, holes and segmentation never throw', () => {
  const validPrefix = rpcMessage({ procedure: 1, type: MessageType.CALL, serial: 0 });
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.constant(validPrefix)), { maxLength: 12 }),
      fc.array(fc.nat({ max: 300 }), { maxLength: 6 }),
      fc.boolean(),
      (chunks, holes, midStream) => {
        let problems = 0;
        const conv = new LibvirtConversation(flow, { problem: () => problems++ }, { midStream });
        let offset = 0;
        chunks.forEach((chunk, i) => {
          conv.data(chunk, 0, chunk.length, (i % 2) as 0 | 1, offset, { sec: 1, ps: i }, i + 1);
          offset += chunk.length;
          const hole = holes[i];
          if (hole) {
            conv.gap((i % 2) as 0 | 1, offset, hole, { sec: 1, ps: i });
            offset += hole;
          }
        });
        conv.end('eof', { sec: 2, ps: 0 });
        assert.ok(problems >= 0);
      },
    ),
    { numRuns: 500 },
  );
});

test('payload decoders: random payloads give a body or a problem, never an exception', () => {
  const procedures = [...REMOTE_PROGRAM.procedures.keys()];
  fc.assert(
    fc.property(fc.constantFrom(...procedures), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 2 }), fc.uint8Array({ maxLength: 300 }), (procedure, type, status, payload) => {
      const decoded = decodePayload({ length: 28 + payload.length, program: REMOTE_PROGRAM.number, version: 1, procedure, type, serial: 1, status }, payload);
      assert.ok(typeof decoded === 'object');
    }),
    { numRuns: 2000 },
  );
});

test('a long run of junk between messages is skipped by resync with bounded carry', () => {
  const junk = new Uint8Array(100_000).fill(0x41);
  const good = rpcMessage({ procedure: 2, type: MessageType.CALL, serial: 7 });
  const seen: number[] = [];
  const conv = new LibvirtConversation(flow, { message: (_c, m) => seen.push(m.serial) }, { midStream: true });
  const bytes = concat([junk, good]);
  for (let o = 0; o < bytes.length; o += 1448) conv.data(bytes, o, Math.min(o + 1448, bytes.length), 0, o, { sec: 1, ps: 0 }, 1);
  assert.deepEqual(seen, [7]);
});
