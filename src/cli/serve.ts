/** `pyedge serve`: run the origin. */
import { Command } from 'commander';
import { envOption, withS3Options } from './env-options.js';
import { resolveOriginConfig, ORIGIN_DEFAULTS, type OriginOptions } from '../origin/origin-config.js';
import { startOrigin } from '../origin/server.js';
import { createLogger } from './logger.js';
import { onShutdown } from './shutdown.js';

export function serveCommand(): Command {
  return withS3Options(new Command('serve')
    .description('run the origin: uploads (twine), the Simple API (pip) and package files')
    .addOption(envOption('--data <dir>', 'folder for the embedded database, blobs and temporary files'))
    .addOption(envOption('--db <url>', 'database: sqlite:PATH (default: inside --data) or postgres://…'))
    .addOption(envOption('--blobs <url>', 'package files: a folder (default: inside --data) or s3://BUCKET/PREFIX'))
    .addOption(envOption('--host <host>', 'address to listen on', ORIGIN_DEFAULTS.host))
    .addOption(envOption('--port <port>', 'port to listen on (0 picks a free one)', ORIGIN_DEFAULTS.port))
    .addOption(envOption('--public-url <url>', 'URL users reach this server at'))
    .addOption(envOption('--max-upload-size <size>', 'largest accepted upload', ORIGIN_DEFAULTS.maxUploadSize))
    .addOption(envOption('--page-max-age <duration>', 'Cache-Control max-age of Simple pages', ORIGIN_DEFAULTS.pageMaxAge))
    .addOption(envOption('--shutdown-grace <duration>', 'how long SIGTERM waits for in-flight uploads', ORIGIN_DEFAULTS.shutdownGrace))
    .addOption(envOption('--key-file <path>', 'ed25519 key that signs pages (default: keys/server-key.pem in --data; created if missing)'))
    .addOption(envOption('--feed-max-clients <n>', 'most change-feed clients waiting at once', ORIGIN_DEFAULTS.feedMaxClients))
    .addOption(envOption('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', ORIGIN_DEFAULTS.logLevel))
    .action(async (options: OriginOptions) => {
      const config = resolveOriginConfig(options);
      const logger = createLogger(config.logLevel, 'origin');
      const origin = await startOrigin(config, logger);
      const base = origin.url.replace(/\/$/, '');
      process.stdout.write(
        `pyedge origin listening on ${base}/\n` +
          `  Simple index (pip --index-url): ${base}/simple/\n` +
          `  Upload (twine --repository-url): ${base}/legacy/\n`,
      );
      onShutdown(logger, () => origin.close());
    }));
}
