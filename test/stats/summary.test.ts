// Reproducing the study's tables: data sets whose summary statistics are known independently
// (NIST StRD certified values, hand-computable sets), checked to full precision for both CI methods.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accumulate } from '../../src/stats/aggregate';
import { summarize, criticalValue, quantileType7 } from '../../src/stats/summary';

const Z975 = 1.959963984540054; // Φ⁻¹(0.975)
const T975_DF2 = 0.95 / Math.sqrt(2 * 0.975 * 0.025); // closed form of the t quantile for df 2

function close(actual: number | undefined, expected: number, rel: number, what: string): void {
  assert.ok(actual !== undefined, `${what} missing`);
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(1e-300, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

test('NIST NumAcc1 (certified mean 10000002, sd 1): both CI methods to full precision', () => {
  const acc = accumulate([10000001, 10000003, 10000002]);
  const t = summarize(acc, { method: 't', confidence: 0.95 });
  assert.equal(t.n, 3);
  assert.equal(t.mean, 10000002);
  assert.equal(t.sd, 1);
  close(t.ciCritical, T975_DF2, 1e-13, 't critical');
  close(t.ciHalfWidth, T975_DF2 / Math.sqrt(3), 1e-13, 't half width');
  close(t.ciLow, 10000002 - T975_DF2 / Math.sqrt(3), 1e-15, 't low');
  close(t.ciHigh, 10000002 + T975_DF2 / Math.sqrt(3), 1e-15, 't high');
  close(t.cov, 1 / 10000002, 1e-15, 'CoV');
  const z = summarize(acc, { method: 'normal', confidence: 0.95 });
  close(z.ciHalfWidth, Z975 / Math.sqrt(3), 1e-15, 'normal half width');
  assert.equal(z.ciMethod, 'normal');
});

test('NIST NumAcc2 (1001 values, certified mean 1.2, sd 0.1)', () => {
  const xs = [1.2];
  for (let i = 0; i < 500; i++) xs.push(1.1, 1.3);
  const acc = accumulate(xs);
  const z = summarize(acc, { method: 'normal', confidence: 0.95 });
  close(z.mean, 1.2, 1e-14, 'mean');
  close(z.sd, 0.1, 1e-12, 'sd');
  close(z.ciHalfWidth, (Z975 * 0.1) / Math.sqrt(1001), 1e-12, 'normal half width');
  close(z.cov, 0.1 / 1.2, 1e-12, 'CoV');
  assert.equal(z.median, 1.2);
  const t = summarize(acc, { method: 't', confidence: 0.95 });
  close(t.ciCritical, 1.962339, 5e-7, 't(0.975, 1000) table value');
});

test('a study-sized group (n = 30, 15 symmetric pairs): mean, sd, CI, CoV, min/median/max', () => {
  const centre = 0.674;
  const deviations = Array.from({ length: 15 }, (_, i) => (i + 1) * 0.001);
  const xs = deviations.flatMap((d) => [centre - d, centre + d]);
  const sd = Math.sqrt((2 * deviations.reduce((s, d) => s + d * d, 0)) / 29);
  const t = summarize(accumulate(xs), { method: 't', confidence: 0.95 });
  assert.equal(t.n, 30);
  close(t.mean, centre, 1e-14, 'mean');
  close(t.sd, sd, 1e-12, 'sd');
  close(t.ciCritical, 2.0452296, 5e-8, 't(0.975, 29)');
  close(t.ciHalfWidth, ((t.ciCritical as number) * sd) / Math.sqrt(30), 1e-14, 't half width');
  close(t.cov, sd / centre, 1e-12, 'CoV');
  close(t.min, centre - 0.015, 1e-15, 'min');
  close(t.max, centre + 0.015, 1e-15, 'max');
  close(t.median, centre, 1e-14, 'median');
  const z = summarize(accumulate(xs), { method: 'normal', confidence: 0.95 });
  close(z.ciHalfWidth, (Z975 * sd) / Math.sqrt(30), 1e-12, 'normal half width');
  assert.ok((t.ciHalfWidth as number) > (z.ciHalfWidth as number), 't interval is wider than the normal one');
});

test('textbook set 2,4,4,4,5,5,7,9: sample sd √(32/7), other confidence levels', () => {
  const acc = accumulate([2, 4, 4, 4, 5, 5, 7, 9]);
  const s = summarize(acc, { method: 'normal', confidence: 0.9 });
  close(s.sd, Math.sqrt(32 / 7), 1e-15, 'sd');
  close(s.ciCritical, 1.6448536269514722, 1e-14, 'z 0.95');
  assert.equal(s.median, 4.5);
  assert.equal(criticalValue(1, { method: 't', confidence: 0.95 }), undefined);
});

test('outliers are flagged with their migration, never removed from the statistics', () => {
  const xs = [0.13, 0.131, 0.129, 0.132, 0.128, 0.13, 0.95];
  const s = summarize(accumulate(xs, 'run'));
  assert.equal(s.n, 7);
  assert.equal(s.max, 0.95);
  assert.deepEqual(s.outliers.map((o) => [o.id, o.value, o.rule]), [['run7', 0.95, 'tukey']]);
  assert.deepEqual(summarize(accumulate([1, 2, 3, 4, 5])).outliers, []);
});

test('single value and empty group: no sd, no interval, no crash', () => {
  const one = summarize(accumulate([0.5]));
  assert.equal(one.mean, 0.5);
  assert.equal(one.sd, undefined);
  assert.equal(one.ciHalfWidth, undefined);
  assert.equal(summarize(accumulate([])).n, 0);
});

test('type-7 quantile interpolates like R/numpy', () => {
  assert.equal(quantileType7([1, 2, 3, 4], 0.25), 1.75);
  assert.equal(quantileType7([1, 2, 3, 4], 0.75), 3.25);
  assert.equal(quantileType7([7], 0.5), 7);
});
