// Summary of one metric over a group of migrations: n, mean, sample sd, confidence interval
// (Student t or normal), coefficient of variation, min/median/max and flagged outliers.
import { medianSorted } from 'simple-statistics';
import { type Accumulator, sampleVariance } from './aggregate';
import { normalQuantile, studentTQuantile } from './distributions';

export type CiMethod = 't' | 'normal';

export interface CiOptions {
  method: CiMethod;
  confidence: number; // e.g. 0.95
}

export const DEFAULT_CI: CiOptions = { method: 't', confidence: 0.95 };

export interface Outlier {
  id: string;
  value: number;
  z?: number;
  rule: 'tukey' | 'z';
}

export interface MetricSummary {
  n: number;
  mean?: number;
  sd?: number; // sample standard deviation (n − 1)
  ciHalfWidth?: number;
  ciLow?: number;
  ciHigh?: number;
  ciMethod: CiMethod;
  ciCritical?: number; // the t or z quantile used
  confidence: number;
  cov?: number; // sd / mean, as a fraction
  min?: number;
  median?: number;
  max?: number;
  outliers: Outlier[];
}

/** The critical value of a two-sided interval: t_{1−α/2, n−1} or z_{1−α/2}. */
export function criticalValue(n: number, ci: CiOptions): number | undefined {
  if (n < 2) return undefined;
  const key = `${ci.method}:${ci.confidence}:${ci.method === 't' ? n : 0}`;
  let value = criticalCache.get(key);
  if (value === undefined) {
    const p = 1 - (1 - ci.confidence) / 2;
    value = ci.method === 't' ? studentTQuantile(p, n - 1) : normalQuantile(p);
    criticalCache.set(key, value);
  }
  return value;
}
// Every group of a study has the same n, so each quantile is computed once per report.
const criticalCache = new Map<string, number>();

/** Quantile by linear interpolation between order statistics (Hyndman & Fan type 7, R's and
 *  numpy's default); simple-statistics' nearest-rank quantile makes fences too tight for small n. */
export function quantileType7(sorted: readonly number[], p: number): number {
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  return lo + 1 < sorted.length ? sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]) : sorted[lo];
}

/** Tukey fences (1.5 × IQR) always; |z| > 3 in addition. Flagged only, never removed. */
function findOutliers(acc: Accumulator, sorted: number[], mean: number, sd: number | undefined): Outlier[] {
  if (acc.n < 4) return [];
  const q1 = quantileType7(sorted, 0.25);
  const q3 = quantileType7(sorted, 0.75);
  const iqr = q3 - q1;
  const low = q1 - 1.5 * iqr;
  const high = q3 + 1.5 * iqr;
  const outliers: Outlier[] = [];
  for (const { id, value } of acc.observations) {
    const z = sd && sd > 0 ? (value - mean) / sd : undefined;
    if (value < low || value > high) outliers.push({ id, value, z, rule: 'tukey' });
    else if (z !== undefined && Math.abs(z) > 3) outliers.push({ id, value, z, rule: 'z' });
  }
  return outliers;
}

export function summarize(acc: Accumulator, ci: CiOptions = DEFAULT_CI): MetricSummary {
  const base: MetricSummary = { n: acc.n, ciMethod: ci.method, confidence: ci.confidence, outliers: [] };
  if (acc.n === 0) return base;
  const sorted = acc.observations.map((o) => o.value).sort((a, b) => a - b);
  const variance = sampleVariance(acc);
  const sd = variance === undefined ? undefined : Math.sqrt(variance);
  const critical = criticalValue(acc.n, ci);
  const half = sd !== undefined && critical !== undefined ? (critical * sd) / Math.sqrt(acc.n) : undefined;
  return {
    ...base,
    mean: acc.mean,
    sd,
    ciHalfWidth: half,
    ciLow: half === undefined ? undefined : acc.mean - half,
    ciHigh: half === undefined ? undefined : acc.mean + half,
    ciCritical: critical,
    cov: sd !== undefined && acc.mean !== 0 ? sd / acc.mean : undefined,
    min: acc.min,
    median: medianSorted(sorted),
    max: acc.max,
    outliers: findOutliers(acc, sorted, acc.mean, sd),
  };
}
