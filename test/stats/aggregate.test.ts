import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mean as ssMean, sampleVariance as ssSampleVariance } from 'simple-statistics';
import { accumulate, emptyAccumulator, mergeAccumulators, sampleVariance, addObservation } from '../../src/stats/aggregate';

const values = fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }), { minLength: 0, maxLength: 80 });

function relClose(a: number, b: number, rel: number, what: string): void {
  assert.ok(Math.abs(a - b) <= rel * Math.max(1, Math.abs(a), Math.abs(b)), `${what}: ${a} vs ${b}`);
}

test('merge of any split equals one pass over the whole (Chan parallel merge)', () => {
  fc.assert(
    fc.property(values, fc.array(fc.nat(), { maxLength: 6 }), (xs, cutsRaw) => {
      const cuts = [...new Set(cutsRaw.map((c) => (xs.length ? c % (xs.length + 1) : 0)))].sort((a, b) => a - b);
      const bounds = [0, ...cuts, xs.length];
      let merged = emptyAccumulator();
      for (let i = 0; i + 1 < bounds.length; i++) merged = mergeAccumulators(merged, accumulate(xs.slice(bounds[i], bounds[i + 1])));
      const whole = accumulate(xs);
      assert.equal(merged.n, whole.n);
      assert.equal(merged.min, whole.min);
      assert.equal(merged.max, whole.max);
      relClose(merged.mean, whole.mean, 1e-9, 'mean');
      relClose(merged.m2, whole.m2, 1e-9, 'm2');
      assert.deepEqual(merged.observations.map((o) => o.value), xs);
    }),
  );
});

test('Welford agrees with simple-statistics two-pass mean and sample variance', () => {
  fc.assert(
    fc.property(values.filter((xs) => xs.length >= 2), (xs) => {
      const acc = accumulate(xs);
      relClose(acc.mean, ssMean(xs), 1e-9, 'mean');
      relClose(sampleVariance(acc) as number, ssSampleVariance(xs), 1e-9, 'variance');
    }),
  );
});

test('no cancellation on large offsets (NIST NumAcc4: 1e7 + 0.1 steps, sd 0.1)', () => {
  const xs = [10000000.2];
  for (let i = 0; i < 500; i++) xs.push(10000000.1, 10000000.3);
  const acc = accumulate(xs);
  relClose(acc.mean, 10000000.2, 1e-15, 'mean');
  relClose(Math.sqrt(sampleVariance(acc) as number), 0.1, 1e-8, 'sd');
});

test('non-finite values are not counted; fewer than two values have no variance', () => {
  const acc = emptyAccumulator();
  addObservation(acc, Number.NaN, 'x');
  addObservation(acc, 3, 'y');
  assert.equal(acc.n, 1);
  assert.equal(sampleVariance(acc), undefined);
});
