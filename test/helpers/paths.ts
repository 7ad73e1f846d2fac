// Where tests find real captures: fixtures/ in the repo, and ../shared/captures beside the clone.
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..', '..', '..'); // dist/test/helpers → repo
export const fixturesDir = path.join(repoRoot, 'fixtures');
export const capturesDir = path.join(fixturesDir, 'captures');
export const sharedCapturesDir = path.join(repoRoot, '..', 'shared', 'captures');
export const cliPath = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

export function fixture(...parts: string[]): string {
  return path.join(fixturesDir, ...parts);
}
