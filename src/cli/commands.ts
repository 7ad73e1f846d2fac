// Every verb of the CLI, one yargs command module each (src/cli/<verb>.ts). Add new verbs here.
// Loaded lazily: a run of one verb requires only that verb's module (start-up counts in `flows`' GB/s).
import type { CommandModule } from 'yargs';

export const commandLoaders: Record<string, () => CommandModule<any, any>> = {
  analyze: () => require('./analyze').analyzeCommand,
  flows: () => require('./flows').flowsCommand,
  report: () => require('./report').reportCommand,
  convert: () => require('./convert').convertCommand,
  live: () => require('./live').liveCommand,
};

/** The modules needed to parse `argv`: just the named verb, or all of them (help, typos). */
export function commandsFor(argv: readonly string[]): CommandModule<any, any>[] {
  const verb = argv.find((arg) => !arg.startsWith('-'));
  const load = verb !== undefined ? commandLoaders[verb] : undefined;
  return load ? [load()] : Object.values(commandLoaders).map((loader) => loader());
}
