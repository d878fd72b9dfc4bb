/** `pyedge verify`: exit 0 only when a static tree is consistent (DESIGN.md §4); `--repair` fixes it from the origin. */
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { PyedgeError } from '../core/errors.js';
import { envOption, withS3Options } from './env-options.js';
import { createLogger } from './logger.js';
import { s3Overrides } from '../origin/origin-config.js';
import { createBlobStore } from '../blobstore/create-blob-store.js';
import { describeBatch } from '../sync/batch-result.js';
import { resolvePublisherConfig, type PublisherOptions } from '../sync/publisher-config.js';
import { openPublisher } from '../sync/publisher.js';
import { repairTree } from '../sync/repair.js';
import { StaticTree } from '../sync/static-tree.js';
import { verifyTree, type VerifyReport } from '../sync/verify.js';

interface VerifyCliOptions extends PublisherOptions {
  readonly hashes: boolean;
  readonly repair?: boolean;
}

function printReport(report: VerifyReport): void {
  for (const p of report.problems) process.stdout.write(`problem: ${p.key}: ${p.message}\n`);
  if (report.orphans.length > 0) process.stdout.write(`note: ${report.orphans.length} file(s) no page links (--repair deletes them)\n`);
  if (report.ahead.length > 0) process.stdout.write(`note: ${report.ahead.length} key(s) ahead of the recorded serial (a batch under way or cut short; the next publish finishes it)\n`);
  const summary = `${report.projects} projects, ${report.files} files, serial ${report.serial ?? 'none'}`;
  process.stdout.write(report.ok ? `tree OK: ${summary}\n` : `tree INCONSISTENT: ${report.problems.length} problem(s); ${summary}\n`);
}

export function verifyCommand(): Command {
  return withS3Options(new Command('verify')
    .description('check a static tree: links resolve, hashes and signatures match, root and pages agree, the recorded serial is not ahead')
    .addOption(envOption('--target <location>', 'the static tree: a folder or s3://BUCKET/PREFIX'))
    .option('--no-hashes', 'check files by presence and size only, without reading them')
    .addOption(envOption('--repair', 'fix what is wrong from --source (deletes bad files, fetches their projects again)'))
    .addOption(envOption('--source <url>', "with --repair: the origin's URL"))
    .addOption(envOption('--public-url <url>', 'with --repair: the URL the publisher gives (JSON API file URLs)'))
    .addOption(envOption('--key-file <path>', "with --repair: the publisher's signing key (default ~/.pyedge/keys/publisher-key.pem)"))
    .addOption(envOption('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'warn'))
    .action(async (options: VerifyCliOptions) => {
      const repair = options.repair === true;
      const config = resolvePublisherConfig(options, repair);
      // The folder store would create a missing folder: a mistyped path must not verify as an empty tree.
      if (!/^s3:/i.test(config.target) && !existsSync(config.target)) {
        throw new PyedgeError('PYEDGE_CONFIG', `There is no tree at ${config.target}; check --target.`, { key: 'target' });
      }
      const checks = { checkHashes: options.hashes };
      const tree = new StaticTree(createBlobStore(config.target, s3Overrides(config)));
      let report: VerifyReport;
      try {
        report = await verifyTree(tree, checks);
      } finally {
        await tree.close();
      }
      printReport(report);
      if (!repair || (report.ok && report.orphans.length === 0)) {
        if (!report.ok) process.exitCode = 1;
        return;
      }
      const logger = createLogger(config.logLevel, 'verify');
      const publisher = await openPublisher(config, logger);
      try {
        const repaired = await repairTree(publisher.engine, publisher.tree, report, checks);
        process.stdout.write(`repair: ${describeBatch(repaired.batch)}; ${repaired.orphansDeleted} unlinked file(s) deleted\n`);
        printReport(repaired.report);
        if (!repaired.report.ok) process.exitCode = 1;
      } finally {
        await publisher.close();
        logger.flush();
      }
    }));
}
