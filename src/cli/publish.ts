/** `pyedge publish`: copy the origin's static parts into a static tree (folder or bucket) and keep it in step. */
import { Command } from 'commander';
import { envOption, withS3Options } from './env-options.js';
import { createLogger } from './logger.js';
import { onShutdown } from './shutdown.js';
import { describeBatch, type BatchResult } from '../sync/batch-result.js';
import { PUBLISHER_DEFAULTS, resolvePublisherConfig, type PublisherOptions } from '../sync/publisher-config.js';
import { openPublisher } from '../sync/publisher.js';
import { syncOnce, watch } from '../sync/sync-loop.js';

/** A line per batch that did something (or failed), for logs that are read by people. */
function printBatch(result: BatchResult): void {
  const busy = result.projectsWritten.length + result.projectsRemoved.length + result.filesCopied + result.keysDeleted > 0 || result.rootWritten;
  if (busy || !result.ok) process.stdout.write(`${describeBatch(result)}\n`);
}

export function publishCommand(): Command {
  return withS3Options(new Command('publish')
    .description("copy the origin's Simple pages, JSON API and files into a static tree, in an order that keeps it consistent")
    .addOption(envOption('--source <url>', "the origin's URL"))
    .addOption(envOption('--target <location>', 'the static tree: a folder or s3://BUCKET/PREFIX'))
    .addOption(envOption('--watch', 'keep following the change feed (SIGTERM finishes the batch under way and exits)'))
    .addOption(envOption('--interval <duration>', 'with --watch: full reconcile this often (e.g. 300, 5m)', PUBLISHER_DEFAULTS.interval))
    .addOption(envOption('--public-url <url>', "where the tree is served: JSON API file URLs point there instead of at the origin"))
    .addOption(envOption('--key-file <path>', "the publisher's ed25519 signing key (default ~/.pyedge/keys/publisher-key.pem; created if missing)"))
    .addOption(envOption('--concurrency <n>', 'pages fetched and files copied at once', PUBLISHER_DEFAULTS.concurrency))
    .addOption(envOption('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', PUBLISHER_DEFAULTS.logLevel))
    .action(async (options: PublisherOptions) => {
      const config = resolvePublisherConfig(options);
      const logger = createLogger(config.logLevel, 'publish');
      const publisher = await openPublisher(config, logger);
      if (!config.watch) {
        try {
          const result = await syncOnce(publisher.engine, { onBatch: printBatch });
          if (!result.ok) {
            process.stderr.write(`pyedge: publishing to ${publisher.tree.description} failed; the tree keeps its last consistent state.\n`);
            process.exitCode = 1;
          }
        } finally {
          await publisher.close();
          logger.flush();
        }
        return;
      }
      const stop = new AbortController();
      process.stdout.write(`pyedge publisher following ${config.source}/ into ${publisher.tree.description}\n`);
      const running = watch(publisher.engine, publisher.source, {
        intervalMs: config.intervalMs,
        signal: stop.signal,
        logger,
        onBatch: printBatch,
      });
      onShutdown(logger, async () => {
        stop.abort();
        await running;
        await publisher.close();
      });
      await running;
    }));
}
