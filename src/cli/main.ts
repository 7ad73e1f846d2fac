#!/usr/bin/env node
// Entry point of the `migscope` binary: parse the verb, hand over to its command module.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode } from '../core/errors';
import { commandsFor } from './commands';

async function main(): Promise<void> {
  const argv = hideBin(process.argv);
  let parser = yargs(argv)
    .scriptName('migscope')
    .usage('$0 <command> [options]\n\nPassive packet-capture analyzer for VM live migration.')
    .strict()
    .demandCommand(1, 'name a command (see --help)')
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`migscope: ${msg}\n(see migscope --help)\n`);
      process.exit(ExitCode.usage);
    });
  for (const command of commandsFor(argv)) parser = parser.command(command);
  await parser.parseAsync();
}

main().catch((err: unknown) => {
  process.stderr.write(`migscope: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(ExitCode.unreadable);
});
