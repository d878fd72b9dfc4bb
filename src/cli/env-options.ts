/** Every option of every command also reads from `PYEDGE_<OPTION>` (e.g. --public-url ← PYEDGE_PUBLIC_URL). */
import { Option, type Command } from 'commander';
import { ORIGIN_DEFAULTS } from '../origin/origin-config.js';

export function envVarFor(longFlag: string): string {
  return 'PYEDGE_' + longFlag.replace(/^--/, '').replace(/-/g, '_').toUpperCase();
}

/** An option that also reads its value from `PYEDGE_<OPTION>`. */
export function envOption(flags: string, description: string, defaultValue?: string): Option {
  const option = new Option(flags, description);
  if (defaultValue !== undefined) option.default(defaultValue);
  if (option.long) option.env(envVarFor(option.long));
  return option;
}

/** Add the S3 options every command that opens a bucket takes (see resolveS3Settings). */
export function withS3Options(cmd: Command): Command {
  return cmd
    .addOption(envOption('--s3-force-path-style <bool>', 'S3: path-style URLs (endpoint/bucket/key)', ORIGIN_DEFAULTS.s3ForcePathStyle))
    .addOption(envOption('--s3-checksums <mode>', 'S3: WHEN_REQUIRED or WHEN_SUPPORTED request checksums', ORIGIN_DEFAULTS.s3Checksums));
}
