import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MigrationRecord } from '../../src/migration/record';
import { duplicateMigrations } from '../../src/report/build';

function record(capture: string, start: string, source = '10.77.0.1'): MigrationRecord {
  return { capture, index: 1, source, destination: '10.77.0.2', domain: 'vm', mode: 'p2p', outcome: 'completed', tsDigits: 9, start, phases: {}, warnings: [] };
}

test('the same migration from a pcap and its µs DPMI conversion is recognised; others are not', () => {
  const records = [
    record('a.pcap.gz', '1795389893.936586159'),
    record('a.cap.gz', '1795389893.936586000'), // truncated to the microsecond
    record('b.pcap.gz', '1795389893.937586159'), // 1 ms later: another migration
    record('c.pcap.gz', '1795389893.936586159', '10.77.0.2'), // other direction
    record('bad.pcap', 'not a time'),
  ];
  assert.deepEqual(duplicateMigrations(records), [['a.pcap.gz#1', 'a.cap.gz#1']]);
});
