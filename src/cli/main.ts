/** The `pyedge` command. */
import { Command, CommanderError } from 'commander';
import { isPyedgeError } from '../core/errors.js';

/**
 * Each subcommand's module, loaded only when that subcommand runs: the modules behind them
 * (fastify, the AWS SDK, the database drivers) take most of a second to load, and tests and
 * scripts start pyedge often.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  up: async () => (await import('./up.js')).upCommand(),
  serve: async () => (await import('./serve.js')).serveCommand(),
  token: async () => (await import('./token.js')).tokenCommand(),
  project: async () => (await import('./project.js')).projectCommand(),
  key: async () => (await import('./key.js')).keyCommand(),
  'import-names': async () => (await import('./import-names.js')).importNamesCommand(),
  publish: async () => (await import('./publish.js')).publishCommand(),
  verify: async () => (await import('./verify.js')).verifyCommand(),
  edge: async () => (await import('./edge.js')).edgeCommand(),
  proxy: async () => (await import('./proxy.js')).proxyCommand(),
};

const program = new Command('pyedge')
  .description('A Python package index that stays available when servers fail')
  .version('0.1.0');
program.exitOverride();

try {
  // The subcommand named on the command line, or all of them (for help and for a misspelt name).
  const named = process.argv[2];
  const load = named === '--version' || named === '-V' ? [] : named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
  for (const command of await Promise.all(load.map((name) => COMMANDS[name]!()))) program.addCommand(command);
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (isPyedgeError(err)) {
    process.stderr.write(`pyedge: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`pyedge: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
