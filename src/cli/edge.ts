/** `pyedge edge`: serve a static tree (folder or bucket) like a CDN node, or redirect downloads to one. */
import { setFlagsFromString } from 'node:v8';
import { Command } from 'commander';
import { envOption, withS3Options } from './env-options.js';
import { createLogger } from './logger.js';
import { onShutdown } from './shutdown.js';
import { EDGE_DEFAULTS, resolveEdgeConfig, type EdgeOptions } from '../edge/edge-config.js';
import { startEdge } from '../edge/edge-server.js';

/** The edge's garbage collection on its own thread where that can be set at run time (see below). */
const GC_FLAGS = ['--no-concurrent-array-buffer-sweeping', '--no-parallel-scavenge'];

export function edgeCommand(): Command {
  return withS3Options(new Command('edge')
    .description('serve a static tree (a folder or s3://BUCKET/PREFIX) at the origin\'s URLs; with --redirect-to, send downloads to a CDN with 302')
    .addOption(envOption('--root <location>', 'the static tree: a folder or s3://BUCKET/PREFIX (optional with --redirect-to: then every path redirects)'))
    .addOption(envOption('--host <host>', 'address to listen on', EDGE_DEFAULTS.host))
    .addOption(envOption('--port <port>', 'port to listen on (0 picks a free one)', EDGE_DEFAULTS.port))
    .addOption(envOption('--redirect-to <url>', 'redirect mode: answer the --redirect-paths with 302 to URL + path (a CDN base)'))
    .addOption(envOption('--redirect-paths <prefixes>', 'with --redirect-to: path prefixes that redirect, comma-separated (/ for every path)', EDGE_DEFAULTS.redirectPaths))
    .addOption(envOption('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', EDGE_DEFAULTS.logLevel))
    .action(async (options: EdgeOptions) => {
      // An edge answers from a small heap in a few microseconds per request. V8's helper threads
      // free every read's buffer on another thread and share out small scavenges, contending with
      // this one for the allocator's lock and taking a core from clients and the kernel: it answers
      // more without them (BENCHMARKS.md, Edge). Only flags V8 takes safely once it runs.
      for (const flag of GC_FLAGS) setFlagsFromString(flag);
      const config = resolveEdgeConfig(options);
      const logger = createLogger(config.logLevel, 'edge');
      const edge = await startEdge(config, logger);
      const lines = [`pyedge edge listening on ${edge.url}/`];
      if (config.root !== null) lines.push(`  tree: ${config.root}`, `  Simple index (pip --index-url): ${edge.url}/simple/`);
      if (config.redirectTo !== null) {
        lines.push(`  redirecting ${config.redirectPaths.map((p) => `/${p}`).join(', ')} to ${config.redirectTo}/`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
      onShutdown(logger, () => edge.close());
    }));
}
