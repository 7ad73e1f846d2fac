// Mergeable running statistics of one metric: Welford's update per value and Chan et al.'s
// parallel merge, so per-file or per-worker partials combine into the same moments as one pass.
// The observations themselves are kept (small: one number per migration) for median and outliers.

export interface Observation {
  value: number;
  id: string; // which migration: "capture#index"
}

export interface Accumulator {
  n: number;
  mean: number;
  m2: number; // sum of squared deviations from the mean
  min: number;
  max: number;
  observations: Observation[];
}

export function emptyAccumulator(): Accumulator {
  return { n: 0, mean: 0, m2: 0, min: Infinity, max: -Infinity, observations: [] };
}

/** Welford's single-value update (numerically stable, no catastrophic cancellation). */
export function addObservation(acc: Accumulator, value: number, id: string): void {
  if (!Number.isFinite(value)) return;
  acc.n += 1;
  const delta = value - acc.mean;
  acc.mean += delta / acc.n;
  acc.m2 += delta * (value - acc.mean);
  if (value < acc.min) acc.min = value;
  if (value > acc.max) acc.max = value;
  acc.observations.push({ value, id });
}

/** Chan, Golub & LeVeque's pairwise combination: exact in real arithmetic. Returns a new accumulator. */
export function mergeAccumulators(a: Accumulator, b: Accumulator): Accumulator {
  if (a.n === 0) return { ...b, observations: [...b.observations] };
  if (b.n === 0) return { ...a, observations: [...a.observations] };
  const n = a.n + b.n;
  const delta = b.mean - a.mean;
  return {
    n,
    mean: a.mean + (delta * b.n) / n,
    m2: a.m2 + b.m2 + (delta * delta * a.n * b.n) / n,
    min: Math.min(a.min, b.min),
    max: Math.max(a.max, b.max),
    observations: [...a.observations, ...b.observations],
  };
}

export function accumulate(values: readonly number[], idPrefix = 'v'): Accumulator {
  const acc = emptyAccumulator();
  values.forEach((v, i) => addObservation(acc, v, `${idPrefix}${i + 1}`));
  return acc;
}

/** Sample variance (n − 1 denominator); undefined below two observations. */
export function sampleVariance(acc: Accumulator): number | undefined {
  return acc.n >= 2 ? acc.m2 / (acc.n - 1) : undefined;
}
