/** `pyedge publish`: copy the origin's static parts into a static tree (folder or bucket) and keep it in step. */
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { envOption, withS3Options } from './env-options.js';
import { createLogger } from './logger.js';
import { onShutdown } from './shutdown.js';
import { createBlobStore } from '../blobstore/create-blob-store.js';
import { parseHttpUrl } from '../core/config.js';
import { PyedgeError } from '../core/errors.js';
import { s3Overrides } from '../origin/origin-config.js';
import { describeBatch, type BatchResult } from '../sync/batch-result.js';
import { PublisherMetrics } from '../sync/metrics.js';
import { serveMetrics, type MetricsServer } from '../sync/metrics-server.js';
import { ProgressReporter } from '../sync/progress.js';
import { PUBLISHER_DEFAULTS, resolvePublisherConfig, type PublisherOptions } from '../sync/publisher-config.js';
import { openPublisher } from '../sync/publisher.js';
import { Purger } from '../sync/purge.js';
import { StaticTree } from '../sync/static-tree.js';
import { StatusRecorder } from '../sync/status.js';
import { formatStatusReport, readStatusReport } from '../sync/status-report.js';
import { syncOnce, watch } from '../sync/sync-loop.js';

interface PublishCliOptions extends PublisherOptions {
  readonly status?: boolean;
  readonly json?: boolean;
}

/** `--purge` is repeatable; PYEDGE_PURGE may list several URLs, separated by spaces or commas. */
function collectUrls(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(/[\s,]+/).filter((u) => u !== '')];
}

/** A line per batch that did something (or failed), for logs that are read by people. */
export function printBatch(result: BatchResult): void {
  const busy = result.projectsWritten.length + result.projectsRemoved.length + result.filesCopied + result.keysDeleted > 0 || result.rootWritten;
  if (busy || !result.ok) process.stdout.write(`${describeBatch(result)}\n`);
}

/** `--status`: the tree's serial, the lag behind the source, the publisher's last error. Exit 1 when the tree has no state. */
async function printStatus(options: PublishCliOptions): Promise<void> {
  const config = resolvePublisherConfig(options, false);
  // The folder store would create a missing folder: a mistyped path must not look like an empty tree.
  if (!/^s3:/i.test(config.target) && !existsSync(config.target)) {
    throw new PyedgeError('PYEDGE_CONFIG', `There is no tree at ${config.target}; check --target.`, { key: 'target' });
  }
  const source = options.source ? parseHttpUrl('--source', options.source) : null;
  const tree = new StaticTree(createBlobStore(config.target, s3Overrides(config)));
  try {
    const report = await readStatusReport(tree, { source });
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatusReport(report));
    if (report.state === null) process.exitCode = 1;
  } finally {
    await tree.close();
  }
}

export function publishCommand(): Command {
  return withS3Options(new Command('publish')
    .description("copy the origin's Simple pages, JSON API and files into a static tree, in an order that keeps it consistent")
    .addOption(envOption('--source <url>', "the origin's URL"))
    .addOption(envOption('--target <location>', 'the static tree: a folder or s3://BUCKET/PREFIX'))
    .addOption(envOption('--watch', 'keep following the change feed (SIGTERM finishes the batch under way and exits)'))
    .addOption(envOption('--interval <duration>', 'with --watch: full reconcile this often (e.g. 300, 5m)', PUBLISHER_DEFAULTS.interval))
    .addOption(envOption('--root-interval <duration>', "refresh the root index's per-project serials at most this often while no project is added or removed (those go at once)", PUBLISHER_DEFAULTS.rootInterval))
    .addOption(envOption('--metrics <host:port>', 'with --watch: serve Prometheus metrics at http://HOST:PORT/metrics (host: 127.0.0.1 unless given)'))
    // Modes, not settings: no PYEDGE_ variable switches them on behind a script's back.
    .option('--status', "print the tree's applied serial, its lag behind the source and the publisher's last error, then exit")
    .option('--json', 'with --status: print it as JSON')
    .addOption(envOption('--public-url <url>', "where the tree is served: JSON API file URLs point there instead of at the origin"))
    .addOption(envOption('--purge <url>', 'after each batch, purge what it changed from this cache (Varnish with deploy/varnish/default.vcl, or a CDN taking PURGE); repeatable').argParser(collectUrls))
    .addOption(envOption('--purge-mode <mode>', 'keys: PURGE with surrogate keys in an xkey-purge header (deploy/varnish/default.vcl); urls: PURGE each changed URL', PUBLISHER_DEFAULTS.purgeMode))
    .addOption(envOption('--key-file <path>', "the publisher's ed25519 signing key (default ~/.pyedge/keys/publisher-key.pem; created if missing)"))
    .addOption(envOption('--concurrency <n>', 'pages fetched and files copied at once', PUBLISHER_DEFAULTS.concurrency))
    .addOption(envOption('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', PUBLISHER_DEFAULTS.logLevel))
    .action(async (options: PublishCliOptions) => {
      if (options.status) return printStatus(options);
      const config = resolvePublisherConfig(options);
      const logger = createLogger(config.logLevel, 'publish');
      const publisher = await openPublisher(config, logger);
      const purger = config.purge.length > 0 ? new Purger({ endpoints: config.purge, mode: config.purgeMode, logger: logger.child({ component: 'purge' }) }) : null;
      if (purger !== null) publisher.tree.recordChanges();
      const { engine } = publisher;
      // A bar on a terminal's stderr; otherwise a line now and then among the batch lines.
      const progress = new ProgressReporter(() => engine.progress, { stream: process.stderr.isTTY ? process.stderr : process.stdout });
      const status = new StatusRecorder(publisher.tree, { source: config.source, watching: config.watch, tree: engine, logger: logger.child({ component: 'status' }) });
      const metrics = config.metrics ? new PublisherMetrics({ tree: engine }) : null;
      if (purger !== null) metrics?.watchPurger(purger);
      const onBatch = (result: BatchResult): void => {
        progress.clear();
        printBatch(result);
        status.batch(result);
        metrics?.observeBatch(result);
        purger?.onBatch(result, publisher.tree.takeChanges());
      };
      progress.start();
      if (!config.watch) {
        try {
          const result = await syncOnce(engine, { onBatch });
          if (!result.ok) {
            process.stderr.write(`pyedge: publishing to ${publisher.tree.description} failed; the tree keeps its last consistent state.\n`);
            process.exitCode = 1;
          }
        } finally {
          progress.stop();
          await purger?.close();
          await status.close();
          await publisher.close();
          logger.flush();
        }
        return;
      }
      const stop = new AbortController();
      let server: MetricsServer | null = null;
      if (metrics !== null && config.metrics !== null) {
        server = await serveMetrics(metrics, config.metrics.host, config.metrics.port);
        process.stdout.write(`pyedge publisher metrics at ${server.url}\n`);
      }
      process.stdout.write(`pyedge publisher following ${config.source}/ into ${publisher.tree.description}\n`);
      const running = watch(engine, publisher.source, {
        intervalMs: config.intervalMs,
        signal: stop.signal,
        logger,
        onBatch,
        onSourceSerial: (serial) => {
          status.sourceSerial(serial);
          metrics?.sourceSerial(serial);
        },
        onSourceError: (err) => {
          status.sourceError(err);
          metrics?.sourceError();
        },
      });
      onShutdown(logger, async () => {
        stop.abort();
        await running;
        await purger?.close();
        progress.stop();
        await server?.close();
        await status.close();
        await publisher.close();
      });
      await running;
    }));
}
