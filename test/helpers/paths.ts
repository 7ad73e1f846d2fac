// Where tests find real captures: fixtures/ in the repo, and ../shared/captures beside the clone.
// Compiled tests live in <repo>/<outDir>/test/helpers (outDir = dist, or dist-NAME for a private build).
import * as path from 'node:path';

const buildRoot = path.resolve(__dirname, '..', '..');
export const repoRoot = path.resolve(buildRoot, '..');
export const fixturesDir = path.join(repoRoot, 'fixtures');
export const capturesDir = path.join(fixturesDir, 'captures');
export const sharedCapturesDir = path.join(repoRoot, '..', 'shared', 'captures');
/** The compiled CLI of the same build as the running test. */
export const cliPath = path.join(buildRoot, 'src', 'cli', 'main.js');

export function fixture(...parts: string[]): string {
  return path.join(fixturesDir, ...parts);
}
