// The one timestamp type every reader produces (pcap µs/ns, pcapng any if_tsresol, DPMI ps, live).
// Whole seconds + picoseconds: both fit a double exactly (ps < 1e12 < 2^53), so no reader rounds.
// Durations are computed as float seconds only at the very end (reporting).

export interface Timestamp {
  readonly sec: number; // seconds since the epoch (may exceed 2^32 for pcapng)
  readonly ps: number; // picoseconds within the second, 0 .. 999_999_999_999
}

export const PS_PER_SEC = 1_000_000_000_000;

/** Digits after the decimal point that a capture's timestamps carry: 6 (µs), 9 (ns), 12 (ps). */
export type TimestampDigits = number;

export function timestamp(sec: number, ps: number): Timestamp {
  if (ps >= PS_PER_SEC || ps < 0) {
    const carry = Math.floor(ps / PS_PER_SEC);
    return { sec: sec + carry, ps: ps - carry * PS_PER_SEC };
  }
  return { sec, ps };
}

/** From a count of `units` per second (e.g. 1e9 for ns) — exact for power-of-ten resolutions. */
export function fromUnits(sec: number, fraction: number, unitsPerSec: number): Timestamp {
  return timestamp(sec, fraction * (PS_PER_SEC / unitsPerSec));
}

export function fromBigIntPs(totalPs: bigint): Timestamp {
  const P = BigInt(PS_PER_SEC);
  let sec = totalPs / P;
  let ps = totalPs % P;
  if (ps < 0n) { ps += P; sec -= 1n; }
  return { sec: Number(sec), ps: Number(ps) };
}

export function toBigIntPs(t: Timestamp): bigint {
  return BigInt(t.sec) * BigInt(PS_PER_SEC) + BigInt(t.ps);
}

export function compareTimestamps(a: Timestamp, b: Timestamp): number {
  return a.sec !== b.sec ? a.sec - b.sec : a.ps - b.ps;
}

export function minTimestamp(a: Timestamp, b: Timestamp): Timestamp {
  return compareTimestamps(a, b) <= 0 ? a : b;
}

export function maxTimestamp(a: Timestamp, b: Timestamp): Timestamp {
  return compareTimestamps(a, b) >= 0 ? a : b;
}

/** later − earlier in seconds (float): for durations and rates, never for storing instants. */
export function secondsBetween(earlier: Timestamp, later: Timestamp): number {
  // Integer picoseconds first: exact below ~9000 s, so short phases lose nothing to cancellation.
  return ((later.sec - earlier.sec) * PS_PER_SEC + (later.ps - earlier.ps)) / PS_PER_SEC;
}

/** later − earlier in picoseconds, exact for any span (bigint). */
export function psBetween(earlier: Timestamp, later: Timestamp): bigint {
  return toBigIntPs(later) - toBigIntPs(earlier);
}

export function addSeconds(t: Timestamp, seconds: number): Timestamp {
  const whole = Math.floor(seconds);
  return timestamp(t.sec + whole, t.ps + Math.round((seconds - whole) * PS_PER_SEC));
}

/** "1733150000.123456789" with exactly `digits` fraction digits (truncation only drops zeros
 *  when digits matches the capture's resolution). */
export function formatTimestamp(t: Timestamp, digits: TimestampDigits = 9): string {
  if (digits <= 0) return String(t.sec);
  const frac = String(t.ps).padStart(12, '0').slice(0, Math.min(digits, 12)).padEnd(digits, '0');
  return `${t.sec}.${frac}`;
}

/** Inverse of formatTimestamp: accepts any number of fraction digits up to 12. */
export function parseTimestamp(text: string): Timestamp {
  const m = /^(-?\d+)(?:\.(\d{1,12}))?$/.exec(text.trim());
  if (!m) throw new Error(`not a timestamp: ${JSON.stringify(text)}`);
  return { sec: Number(m[1]), ps: Number((m[2] ?? '').padEnd(12, '0')) };
}

/** ISO-8601 UTC with the capture's resolution, e.g. 2026-12-02T17:40:31.123456789Z. */
export function isoTimestamp(t: Timestamp, digits: TimestampDigits = 9): string {
  const base = new Date(t.sec * 1000).toISOString().slice(0, 19);
  const frac = formatTimestamp(t, digits).split('.')[1];
  return frac ? `${base}.${frac}Z` : `${base}Z`;
}
