import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatTimestamp, parseTimestamp, fromBigIntPs, toBigIntPs, secondsBetween, fromUnits, isoTimestamp } from '../../src/core/timestamp';

test('format/parse round trip keeps picoseconds exactly', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 999_999_999_999 }), (sec, ps) => {
    const t = { sec, ps };
    assert.deepEqual(parseTimestamp(formatTimestamp(t, 12)), t);
    assert.deepEqual(fromBigIntPs(toBigIntPs(t)), t);
  }));
});

test('resolutions: ns and µs fractions are exact, formatting keeps the capture digits', () => {
  const t = fromUnits(1733150000, 123456789, 1e9);
  assert.deepEqual(t, { sec: 1733150000, ps: 123456789000 });
  assert.equal(formatTimestamp(t, 9), '1733150000.123456789');
  assert.equal(formatTimestamp(fromUnits(5, 7, 1e6), 6), '5.000007');
  assert.equal(isoTimestamp(t, 9), '2024-12-02T14:33:20.123456789Z');
  assert.equal(secondsBetween({ sec: 1, ps: 999_999_999_999 }, { sec: 2, ps: 1 }), 2e-12);
});
