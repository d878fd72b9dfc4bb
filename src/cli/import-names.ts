/** `pyedge import-names`: build an index at PyPI's size from a list of project names. */
import { Command } from 'commander';
import { envOption } from './env-options.js';
import { resolveOriginConfig, s3Overrides, type OriginOptions } from '../origin/origin-config.js';
import { createDatabase } from '../db/create-database.js';
import { createBlobStore } from '../blobstore/create-blob-store.js';
import { importNames } from '../origin/import/name-import.js';
import { parsePositiveInt } from '../core/config.js';

interface ImportOptions extends OriginOptions {
  readonly limit?: string;
  readonly files: boolean;
}

export function importNamesCommand(): Command {
  return new Command('import-names')
    .description('load projects (one release and one generated file each) from a name<TAB>version TSV, optionally gzipped')
    .argument('<file>', 'e.g. pypi-projects.tsv.gz')
    .addOption(envOption('--data <dir>', "the origin's data folder"))
    .addOption(envOption('--db <url>', 'database: sqlite:PATH (default: inside --data) or postgres://…'))
    .addOption(envOption('--blobs <url>', 'package files: a folder (default: inside --data) or s3://BUCKET/PREFIX'))
    .addOption(envOption('--limit <n>', 'import at most this many projects'))
    .option('--no-files', 'record the files without writing their bytes to the blob store')
    .action(async (file: string, options: ImportOptions) => {
      const config = resolveOriginConfig(options);
      const limit = options.limit === undefined ? undefined : parsePositiveInt('--limit', options.limit);
      const db = createDatabase(config.db);
      const blobs = createBlobStore(config.blobs, s3Overrides(config));
      try {
        await db.migrate();
        const interactive = process.stderr.isTTY;
        const result = await importNames(db, blobs, file, {
          files: options.files,
          ...(limit !== undefined ? { limit } : {}),
          onProgress: (done, skipped) => {
            if (interactive) process.stderr.write(`\rimported ${done} projects (${skipped} already there)`);
            else if (done % 100_000 < 5000) process.stderr.write(`imported ${done} projects (${skipped} already there)\n`);
          },
        });
        if (interactive) process.stderr.write('\n');
        process.stdout.write(
          `imported ${result.imported} projects (${result.skipped} already there, ${result.invalid} invalid lines) in ${(result.ms / 1000).toFixed(1)} s; last serial ${result.lastSerial}\n`,
        );
      } finally {
        await Promise.allSettled([db.close(), blobs.close()]);
      }
    });
}
