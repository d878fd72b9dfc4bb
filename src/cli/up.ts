/** `pyedge up`: origin, publisher, edge and proxy on loopback in one process; prints the URLs and ready-to-copy twine and pip lines. */
import { Command } from 'commander';
import { envOption } from './env-options.js';
import { createLogger } from './logger.js';
import { printBatch } from './publish.js';
import { onShutdown } from './shutdown.js';
import { resolveUpConfig, UP_DEFAULTS, type UpOptions } from '../up/up-config.js';
import { startStack, type RunningStack } from '../up/stack.js';

export function banner(stack: RunningStack): string {
  const lines = [
    `pyedge is up (data in ${stack.dataDir})`,
    `  origin  ${stack.originUrl}/          uploads go to ${stack.originUrl}/legacy/`,
    `  edge    ${stack.edgeUrl}/simple/   the published tree: reads go on when the origin is down`,
    `  proxy   ${stack.proxyUrl}/simple/   fails over between edge and origin, checks every file's hash`,
    '',
    stack.firstRun ? `Made user '${stack.user}' with an API token (kept in ${stack.layout.stateFile}):` : `Upload as '${stack.user}' (token kept in ${stack.layout.stateFile}):`,
    `  twine upload --repository-url ${stack.originUrl}/legacy/ -u __token__ -p ${stack.token} dist/*`,
    'Install through the proxy (or point pip at it for good: pip config set global.index-url URL, or PIP_INDEX_URL):',
    `  pip install --index-url ${stack.proxyUrl}/simple/ PACKAGE`,
    'or straight from the edge:',
    `  pip install --index-url ${stack.edgeUrl}/simple/ PACKAGE`,
    '',
    'Ctrl-C stops everything.',
  ];
  return `${lines.join('\n')}\n`;
}

export function upCommand(): Command {
  return new Command('up')
    .description('run origin, publisher, edge and fail-over proxy together on loopback: the quickest way to try pyedge')
    .addOption(envOption('--data <dir>', 'folder for everything the stack keeps (made if missing)', UP_DEFAULTS.data))
    .addOption(envOption('--host <host>', 'address the servers listen on', UP_DEFAULTS.host))
    .addOption(envOption('--origin-port <port>', "the origin's port (default: last run's, else any free one)"))
    .addOption(envOption('--edge-port <port>', "the edge's port (default: last run's, else any free one)"))
    .addOption(envOption('--proxy-port <port>', "the proxy's port (default: last run's, else any free one)"))
    .addOption(envOption('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', UP_DEFAULTS.logLevel))
    .action(async (options: UpOptions) => {
      const config = resolveUpConfig(options);
      const logger = createLogger(config.logLevel, 'up');
      const stack = await startStack(config, logger, { onBatch: printBatch });
      process.stdout.write(banner(stack));
      onShutdown(logger, () => stack.close());
    });
}
