// Experiment factors (e.g. flavor=small, load=50) of each capture, from four sources in priority
// order: a manifest CSV (file → factor columns), a filename pattern with named fields,
// directory names, and markers carried in the record itself (DPMI experiment/run markers).
import * as path from 'node:path';
import type { MigrationRecord } from '../migration/record';
import { parseCsv } from './csv-parse';

export type Factors = Record<string, string>;

export interface Manifest {
  file: string;
  byPath: Map<string, Factors>; // resolved absolute path → factors
  byName: Map<string, Factors>; // basename without compression suffix → factors
  columns: string[];
}

const FILE_COLUMNS = ['file', 'capture', 'path', 'filename'];

function stripCompression(name: string): string {
  return name.replace(/\.(gz|zst|xz|bz2)$/i, '');
}

/** A manifest CSV: a header row with a `file` (or `capture`/`path`) column and one column per factor. */
export function parseManifest(text: string, manifestFile: string): Manifest {
  const rows = parseCsv(text).filter((r) => r.some((cell) => cell.trim() !== ''));
  if (rows.length === 0) throw new Error(`${manifestFile}: manifest is empty`);
  const header = rows[0].map((h) => h.trim());
  const fileColumn = header.findIndex((h) => FILE_COLUMNS.includes(h.toLowerCase()));
  if (fileColumn < 0) throw new Error(`${manifestFile}: manifest needs a column named one of ${FILE_COLUMNS.join(', ')}`);
  const columns = header.filter((_, i) => i !== fileColumn);
  const manifest: Manifest = { file: manifestFile, byPath: new Map(), byName: new Map(), columns };
  const base = path.dirname(manifestFile);
  rows.slice(1).forEach((row, i) => {
    const file = (row[fileColumn] ?? '').trim();
    if (!file) throw new Error(`${manifestFile}: row ${i + 2} has no file name`);
    const factors: Factors = {};
    header.forEach((h, c) => {
      if (c !== fileColumn && (row[c] ?? '').trim() !== '') factors[h] = row[c].trim();
    });
    manifest.byPath.set(path.resolve(base, file), factors);
    manifest.byName.set(stripCompression(path.basename(file)), factors);
  });
  return manifest;
}

export function manifestFactors(manifest: Manifest, capture: string): Factors | undefined {
  return manifest.byPath.get(path.resolve(capture)) ?? manifest.byName.get(stripCompression(path.basename(capture)));
}

export interface FilenamePattern {
  source: string;
  fields: string[];
  regex: RegExp;
}

/** '{flavor}-{load}-{run}.pcap' → a regex anchored at the end of the path; fields match no '/'. */
export function compilePattern(pattern: string): FilenamePattern {
  const fields: string[] = [];
  let regex = '';
  let last = 0;
  const fieldRe = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
  for (let m = fieldRe.exec(pattern); m; m = fieldRe.exec(pattern)) {
    regex += escapeRegex(pattern.slice(last, m.index));
    if (fields.includes(m[1])) throw new Error(`pattern ${pattern}: field {${m[1]}} appears twice`);
    fields.push(m[1]);
    regex += `(?<${m[1]}>[^/]+?)`;
    last = m.index + m[0].length;
  }
  regex += escapeRegex(pattern.slice(last));
  if (fields.length === 0) throw new Error(`pattern ${pattern}: no {field} in it`);
  // A pattern written for NAME.pcap also matches the gzipped NAME.pcap.gz.
  const compressed = /\.(gz|zst|xz|bz2)$/i.test(pattern) ? '' : '(?:\\.(?:gz|zst|xz|bz2))?';
  return { source: pattern, fields, regex: new RegExp(`(?:^|/)${regex}${compressed}$`) };
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function patternFactors(pattern: FilenamePattern, capture: string): Factors | undefined {
  const m = pattern.regex.exec(capture.split(path.sep).join('/'));
  if (!m?.groups) return undefined;
  return { ...m.groups };
}

/** Directory names as factors: `names` label the innermost parents (last name = direct parent);
 *  any parent directory written `name=value` is a factor too. */
export function directoryFactors(capture: string, names: readonly string[]): Factors {
  const parents = path.dirname(capture).split(/[\\/]/).filter((p) => p && p !== '.');
  const factors: Factors = {};
  for (const dir of parents) {
    const eq = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(dir);
    if (eq) factors[eq[1]] = eq[2];
  }
  const tail = parents.slice(Math.max(0, parents.length - names.length));
  const offset = names.length - tail.length;
  tail.forEach((dir, i) => {
    factors[names[i + offset]] = dir;
  });
  return factors;
}

export interface FactorSources {
  manifest?: Manifest;
  pattern?: FilenamePattern;
  dirFactors?: readonly string[];
}

/** All factors of a record; higher-priority sources override lower ones. */
export function factorsOf(record: MigrationRecord, sources: FactorSources): Factors {
  const fromDirs = sources.dirFactors ? directoryFactors(record.capture, sources.dirFactors) : {};
  const fromPattern = sources.pattern ? patternFactors(sources.pattern, record.capture) ?? {} : {};
  const fromManifest = sources.manifest ? manifestFactors(sources.manifest, record.capture) ?? {} : {};
  return { ...(record.markers ?? {}), ...fromDirs, ...fromPattern, ...fromManifest };
}

/** Factors that name a repetition rather than a condition; left out of the default grouping. */
export const REPETITION_FACTORS = ['run', 'rep', 'repetition', 'repeat', 'iteration', 'i'];
