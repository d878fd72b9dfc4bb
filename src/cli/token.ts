/** `pyedge token create`: issue an API token for twine. */
import { Command } from 'commander';
import { envOption } from './env-options.js';
import { resolveOriginConfig, type OriginOptions } from '../origin/origin-config.js';
import { createDatabase } from '../db/create-database.js';
import { issueToken } from '../origin/tokens.js';
import { isValidName } from '../core/names.js';
import { PyedgeError } from '../core/errors.js';

interface TokenCreateOptions extends OriginOptions {
  readonly user: string;
  readonly project?: string;
}

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$/;

export function tokenCommand(): Command {
  const token = new Command('token').description('manage API tokens');
  token
    .command('create')
    .description('print a new API token for twine (the user is created if new)')
    .addOption(envOption('--user <name>', 'user the token uploads as').makeOptionMandatory())
    .addOption(envOption('--project <name>', 'limit the token to one project'))
    .addOption(envOption('--data <dir>', 'the origin\'s data folder'))
    .addOption(envOption('--db <url>', 'database: sqlite:PATH (default: inside --data) or postgres://…'))
    .action(async (options: TokenCreateOptions) => {
      if (!USERNAME.test(options.user)) {
        throw new PyedgeError('PYEDGE_CONFIG', `Invalid --user '${options.user}': use letters, digits, '.', '_' or '-' (at most 50).`);
      }
      if (options.project !== undefined && !isValidName(options.project)) {
        throw new PyedgeError('PYEDGE_CONFIG', `Invalid --project '${options.project}': not a valid project name.`);
      }
      const config = resolveOriginConfig(options);
      const db = createDatabase(config.db);
      try {
        await db.migrate();
        const issued = await issueToken(db, options.user, options.project ?? null);
        process.stdout.write(`${issued.token}\n`);
      } finally {
        await db.close();
      }
    });
  return token;
}
