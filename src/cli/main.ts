/** The `pyedge` command. */
import { Command, CommanderError } from 'commander';
import { isPyedgeError } from '../core/errors.js';
import { serveCommand } from './serve.js';
import { tokenCommand } from './token.js';
import { projectCommand } from './project.js';
import { keyCommand } from './key.js';
import { importNamesCommand } from './import-names.js';
import { publishCommand } from './publish.js';
import { verifyCommand } from './verify.js';

const program = new Command('pyedge')
  .description('A Python package index that stays available when servers fail')
  .version('0.1.0')
  .addCommand(serveCommand())
  .addCommand(tokenCommand())
  .addCommand(projectCommand())
  .addCommand(keyCommand())
  .addCommand(importNamesCommand())
  .addCommand(publishCommand())
  .addCommand(verifyCommand());
program.exitOverride();

try {
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
