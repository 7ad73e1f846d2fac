// yargs-parser drops a lone '-' (stdin) from array positionals. When '-' was given, take the
// capture names from argv instead: every word after the verb that is not an option or the value
// of an option that takes one.
import { hideBin } from 'yargs/helpers';

export function capturesWithStdin(verb: string, captures: string[], optionsWithValue: readonly string[] = []): string[] {
  const argv = hideBin(process.argv);
  const words = argv.slice(argv.indexOf(verb) + 1);
  if (!words.includes('-')) return captures;
  const valued = new Set(optionsWithValue);
  return words.filter((word, i) => (word === '-' || !word.startsWith('-')) && !valued.has(words[i - 1]));
}
