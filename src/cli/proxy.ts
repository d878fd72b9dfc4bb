/** `pyedge proxy`: a local index for pip that fails over between upstreams, verifies what they send and caches it. */
import { Command } from 'commander';
import { envOption } from './env-options.js';
import { createLogger } from './logger.js';
import { onShutdown } from './shutdown.js';
import { PROXY_DEFAULTS, resolveProxyConfig, type ProxyOptions } from '../proxy/proxy-config.js';
import { startProxy } from '../proxy/proxy-server.js';

/** `--upstream` is repeatable; PYEDGE_UPSTREAM may list several URLs, separated by spaces or commas. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(/[\s,]+/).filter((u) => u !== '')];
}

export function proxyCommand(): Command {
  return new Command('proxy')
    .description('serve pip from several upstream indexes: fail over, hedge slow requests, verify hashes and signatures, cache')
    .addOption(envOption('--upstream <url>', 'an index root ending in /simple/ (origin, edge, static tree, mirror); repeatable, best first').argParser(collect))
    .addOption(envOption('--host <host>', 'address to listen on', PROXY_DEFAULTS.host))
    .addOption(envOption('--port <port>', 'port to listen on (0 picks a free one)', PROXY_DEFAULTS.port))
    .addOption(envOption('--cache <dir>', 'keep verified files and the newest pages here, and serve them when every upstream is down'))
    .addOption(envOption('--connect-timeout <duration>', 'longest wait for a connection to an upstream', PROXY_DEFAULTS.connectTimeout))
    .addOption(envOption('--first-byte-timeout <duration>', "longest wait for a page's response headers", PROXY_DEFAULTS.firstByteTimeout))
    .addOption(envOption('--file-first-byte-timeout <duration>', "longest wait for a file's response headers", PROXY_DEFAULTS.fileFirstByteTimeout))
    .addOption(envOption('--idle-timeout <duration>', 'longest silence between two chunks of an answer', PROXY_DEFAULTS.idleTimeout))
    .addOption(envOption('--hedge-budget <share>', 'share of requests that may also go to a second upstream (0 turns hedging off)', PROXY_DEFAULTS.hedgeBudget))
    .addOption(envOption('--hedge-percentile <p>', 'hedge when an upstream is slower than this percentile of recent latencies', PROXY_DEFAULTS.hedgePercentile))
    .addOption(envOption('--hedge-delay <duration>', 'hedge delay until enough latencies are known', PROXY_DEFAULTS.hedgeDelay))
    .addOption(envOption('--probe-interval <duration>', 'how often to probe each upstream in the background (0: never)', PROXY_DEFAULTS.probeInterval))
    .addOption(envOption('--down-after <n>', 'consecutive failures that mark an upstream down', PROXY_DEFAULTS.downAfter))
    .addOption(envOption('--signatures <mode>', "auto: check pages once a key is known (--server-key, or an upstream's /serverkey on first use); require: refuse unsigned pages; off", PROXY_DEFAULTS.signatures))
    .addOption(envOption('--server-key <file>', 'the public key (PEM) that signs pages, instead of trusting /serverkey on first use'))
    .addOption(envOption('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', PROXY_DEFAULTS.logLevel))
    .action(async (options: ProxyOptions) => {
      const config = resolveProxyConfig(options);
      const logger = createLogger(config.logLevel, 'proxy');
      const proxy = await startProxy(config, logger);
      process.stdout.write(
        `pyedge proxy listening on ${proxy.url}/\n` +
          `  pip install --index-url ${proxy.url}/simple/ …   (or PIP_INDEX_URL=${proxy.url}/simple/)\n` +
          `  status: ${proxy.url}/_status   metrics: ${proxy.url}/metrics\n`,
      );
      onShutdown(logger, () => proxy.close());
    });
}
