// Link types and IP variants the real migrations lack — QinQ + IPv6 extension headers + port
// reuse, IPv4 and IPv6 fragments (sent out of order), Linux SLL2, BSD NULL with IPv6, raw IPv4
// with sequence wrap-around — against tshark. The small captures and their oracles
// (`tshark -q -n -z conv,tcp`, tshark 4.0.17) were written by scripts/flows/make-variety.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { fixture } from '../helpers/paths';
import { runPipeline } from '../../src/flow/pipeline';
import { assertConvEqual } from './tshark-conv';

const NAMES = ['qinq-ipv6-ext', 'ipv4-fragments', 'ipv6-fragments', 'sll2', 'null-ipv6', 'raw-ipv4-seq-wrap'];

for (const name of NAMES) {
  test(`variety capture ${name}: flows equal tshark, streams complete`, async () => {
    const file = fixture('flows', `variety-${name}.pcap`);
    const result = await runPipeline(file);
    assert.equal(result.problems.length, 0);
    assertConvEqual(result, fs.readFileSync(file.replace(/\.pcap$/, '.conv-tcp.txt'), 'utf8'));
    for (const flow of result.flows) {
      assert.equal(flow.endReason, 'fin');
      for (const s of flow.stats) {
        assert.equal(s.gaps, 0);
        assert.equal(s.streamBytes, s.payloadBytes, 'every payload byte delivered once');
      }
    }
  });
}

test('fragmented datagrams were reassembled, not counted as TCP frames on their own', async () => {
  const result = await runPipeline(fixture('flows', 'variety-ipv4-fragments.pcap'));
  assert.equal(result.stats.fragments.reassembled, 3);
  assert.equal(result.stats.fragments.fragments, 9);
  assert.equal(result.flows[0].stats[0].streamBytes, 4000);
});
