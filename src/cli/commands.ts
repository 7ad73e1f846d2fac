// Every verb of the CLI, one yargs command module each (src/cli/<verb>.ts). Add new verbs here.
import type { CommandModule } from 'yargs';

export const commands: CommandModule<any, any>[] = [
  // e.g. require('./flows').flowsCommand,
  require('./report').reportCommand,
  require('./flows').flowsCommand,
  require('./analyze').analyzeCommand,
  require('./convert').convertCommand,
  require('./live').liveCommand,
];
