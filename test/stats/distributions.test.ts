import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { normalCdf, normalQuantile, studentTCdf, studentTQuantile, regularizedIncompleteBeta, logGamma } from '../../src/stats/distributions';

function close(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected} (tolerance ${tolerance})`);
}

test('t quantile matches published two-sided 95% table values (jstat / R qt)', () => {
  const table: [number, number][] = [
    [1, 12.7062047],
    [4, 2.7764451],
    [9, 2.2621572],
    [29, 2.0452296],
  ];
  for (const [df, t] of table) close(studentTQuantile(0.975, df), t, 5e-8, `df ${df}`);
});

test('t quantile equals the closed forms for df 1 (Cauchy) and df 2', () => {
  fc.assert(
    fc.property(fc.double({ min: 0.001, max: 0.999, noNaN: true }), (p) => {
      const cauchy = Math.tan(Math.PI * (p - 0.5));
      close(studentTQuantile(p, 1), cauchy, 1e-10 * Math.max(1, Math.abs(cauchy)), `df 1, p ${p}`);
      const df2 = (2 * p - 1) / Math.sqrt(2 * p * (1 - p));
      close(studentTQuantile(p, 2), df2, 1e-11 * Math.max(1, Math.abs(df2)), `df 2, p ${p}`);
    }),
  );
});

test('t quantile inverts the t CDF and tends to the normal quantile', () => {
  fc.assert(
    fc.property(fc.double({ min: 0.0005, max: 0.9995, noNaN: true }), fc.integer({ min: 1, max: 500 }), (p, df) => {
      close(studentTCdf(studentTQuantile(p, df), df), p, 1e-12, `p ${p} df ${df}`);
    }),
  );
  close(studentTQuantile(0.975, 1e7), 1.959963984540054, 1e-6, 'df 1e7');
  assert.ok(studentTQuantile(0.975, 30) > normalQuantile(0.975));
});

test('normal quantile is the study z = 1.959964 to full double precision', () => {
  close(normalQuantile(0.975), 1.959963984540054, 2e-15, 'z 0.975');
  close(normalQuantile(0.995), 2.5758293035489004, 4e-15, 'z 0.995');
  close(normalQuantile(0.5 + 0.6826894921370859 / 2), 1, 1e-13, 'one sigma');
  close(normalQuantile(0.025), -1.959963984540054, 2e-15, 'symmetric');
  close(normalCdf(1.959963984540054), 0.975, 1e-15, 'cdf');
});

test('building blocks: log-gamma and incomplete beta against exact values', () => {
  close(logGamma(0.5), Math.log(Math.sqrt(Math.PI)), 1e-14, 'lnΓ(1/2)');
  close(logGamma(10), Math.log(362880), 1e-13, 'lnΓ(10)');
  close(regularizedIncompleteBeta(0.3, 1, 1), 0.3, 1e-15, 'uniform');
  close(regularizedIncompleteBeta(0.3, 2, 1), 0.09, 1e-15, 'x^2');
  close(regularizedIncompleteBeta(0.7, 1, 3), 1 - 0.3 ** 3, 1e-15, '1-(1-x)^3');
});

test('bad arguments are refused, not answered with NaN', () => {
  assert.throws(() => studentTQuantile(1, 5), RangeError);
  assert.throws(() => studentTQuantile(0.9, 0), RangeError);
  assert.throws(() => normalQuantile(0), RangeError);
});
