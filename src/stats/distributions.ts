// Quantiles for confidence intervals: Student t (exact to ~1e-12 via the regularized incomplete
// beta function) and the standard normal (via the incomplete gamma function). simple-statistics
// has no t quantile and its probit(0.975) is 1.95716, too coarse for the study's z = 1.959964.

const LANCZOS_G = 7;
const LANCZOS_COEFFICIENTS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, relative error ~1e-15). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x); // reflection
  const z = x - 1;
  let sum = LANCZOS_COEFFICIENTS[0];
  for (let i = 1; i < LANCZOS_G + 2; i++) sum += LANCZOS_COEFFICIENTS[i] / (z + i);
  const t = z + LANCZOS_G + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

const EPSILON = 2.5e-16; // ~ machine epsilon: a smaller bound never triggers and runs every loop to its cap
const TINY = 1e-300;
const MAX_ITERATIONS = 500;

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= MAX_ITERATIONS; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPSILON) break;
  }
  return h;
}

/** Regularized incomplete beta I_x(a, b). */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  const front = Math.exp(logFront);
  // The continued fraction converges fast only on this side of the mean; use symmetry otherwise.
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

/** Upper-tail probability P(T > t) of Student's t with `df` degrees of freedom, for t ≥ 0. */
function studentTUpperTail(t: number, df: number): number {
  return 0.5 * regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
}

export function studentTCdf(t: number, df: number): number {
  const upper = studentTUpperTail(Math.abs(t), df);
  return t >= 0 ? 1 - upper : upper;
}

export function studentTDensity(t: number, df: number): number {
  const logNorm = logGamma((df + 1) / 2) - logGamma(df / 2) - 0.5 * Math.log(df * Math.PI);
  return Math.exp(logNorm - ((df + 1) / 2) * Math.log1p((t * t) / df));
}

/** Solve upperTail(x) = target for x ≥ 0 by Newton steps kept inside a shrinking bisection bracket. */
function invertUpperTail(upperTail: (x: number) => number, density: (x: number) => number, target: number): number {
  let lo = 0;
  let hi = 1;
  while (upperTail(hi) > target) {
    lo = hi;
    hi *= 2;
    if (hi > 1e15) return Infinity;
  }
  let x = (lo + hi) / 2;
  for (let i = 0; i < 100; i++) {
    const f = upperTail(x) - target; // decreasing in x
    if (f === 0) return x;
    if (f > 0) lo = x;
    else hi = x;
    const step = f / density(x);
    // Newton converges quadratically: a step of a few ulps means x is the root (checked before
    // the bracket test, which a zero step would fail because x is now a bracket end).
    if (Math.abs(step) <= 4e-16 * Math.abs(x)) return x + step;
    let next = x + step;
    if (!(next > lo && next < hi)) next = (lo + hi) / 2;
    if (hi - lo <= 4e-16 * hi) return next;
    x = next;
  }
  return x;
}

/** Student t quantile: the t with P(T ≤ t) = p. */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`probability must be in (0, 1): ${p}`);
  if (!(df > 0)) throw new RangeError(`degrees of freedom must be positive: ${df}`);
  if (p === 0.5) return 0;
  if (!Number.isFinite(df)) return normalQuantile(p);
  const upper = p > 0.5 ? 1 - p : p;
  const t = invertUpperTail(
    (x) => studentTUpperTail(x, df),
    (x) => studentTDensity(x, df),
    upper,
  );
  return p > 0.5 ? t : -t;
}

/** Regularized upper incomplete gamma Q(a, x) (series below a+1, continued fraction above). */
export function regularizedUpperGamma(a: number, x: number): number {
  if (x <= 0) return 1;
  const logFront = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < MAX_ITERATIONS; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * EPSILON) break;
    }
    return 1 - sum * Math.exp(logFront);
  }
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITERATIONS; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPSILON) break;
  }
  return Math.exp(logFront) * h;
}

/** P(Z > z) for z ≥ 0: erfc(z/√2)/2 = Q(1/2, z²/2)/2. */
function normalUpperTail(z: number): number {
  return 0.5 * regularizedUpperGamma(0.5, (z * z) / 2);
}

export function normalDensity(z: number): number {
  return Math.exp(-(z * z) / 2) / Math.sqrt(2 * Math.PI);
}

export function normalCdf(z: number): number {
  const upper = normalUpperTail(Math.abs(z));
  return z >= 0 ? 1 - upper : upper;
}

/** Standard normal quantile (probit). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`probability must be in (0, 1): ${p}`);
  if (p === 0.5) return 0;
  const upper = p > 0.5 ? 1 - p : p;
  const z = invertUpperTail(normalUpperTail, normalDensity, upper);
  return p > 0.5 ? z : -z;
}
