/**
 * `pyedge project …`: project management as the administrator, straight on the
 * origin's database and blob store. A running origin sees each change within
 * about half a second (it polls the changelog).
 */
import { Command, Option } from 'commander';
import { envOption } from './env-options.js';
import { resolveOriginConfig, s3Overrides, ORIGIN_DEFAULTS, type OriginOptions } from '../origin/origin-config.js';
import { createDatabase } from '../db/create-database.js';
import { createBlobStore } from '../blobstore/create-blob-store.js';
import { ADMIN, PROJECT_STATUSES, ProjectManager, ROLES } from '../origin/manage/project-manager.js';
import { PyedgeError } from '../core/errors.js';
import type { ProjectStatus, Role } from '../core/model.js';
import { createLogger } from './logger.js';

interface StoreOptions extends OriginOptions {
  readonly reason?: string;
  readonly role?: Role;
  readonly yes?: boolean;
}

/** Opens the stores, runs `fn` with a manager acting as administrator, closes the stores. */
async function withManager(options: StoreOptions, fn: (manager: ProjectManager) => Promise<string>): Promise<void> {
  const config = resolveOriginConfig(options);
  const logger = createLogger(config.logLevel, 'project');
  const db = createDatabase(config.db);
  const blobs = createBlobStore(config.blobs, s3Overrides(config));
  try {
    await db.migrate();
    const line = await fn(new ProjectManager(db, blobs, logger));
    process.stdout.write(`${line}\n`);
  } finally {
    await Promise.allSettled([db.close(), blobs.close()]);
  }
}

/** Adds the options every subcommand shares (where the origin keeps its data). */
function withStoreOptions(command: Command): Command {
  return command
    .addOption(envOption('--data <dir>', "the origin's data folder"))
    .addOption(envOption('--db <url>', 'database: sqlite:PATH (default: inside --data) or postgres://…'))
    .addOption(envOption('--blobs <url>', 'package files: a folder (default: inside --data) or s3://BUCKET/PREFIX'))
    .addOption(envOption('--s3-force-path-style <bool>', 'S3: path-style URLs (endpoint/bucket/key)', ORIGIN_DEFAULTS.s3ForcePathStyle))
    .addOption(envOption('--s3-checksums <mode>', 'S3: WHEN_REQUIRED or WHEN_SUPPORTED request checksums', ORIGIN_DEFAULTS.s3Checksums))
    .addOption(envOption('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'warn'));
}

const files = (n: number): string => `${n} file${n === 1 ? '' : 's'}`;

export function projectCommand(): Command {
  const project = new Command('project').description('manage projects as the administrator: yank, remove, roles, status');

  withStoreOptions(project.command('yank').argument('<name>').argument('<version>'))
    .description('yank a release (PEP 592): installers skip it unless it is pinned with ==')
    .addOption(envOption('--reason <text>', 'why, shown to users'))
    .action((name: string, version: string, options: StoreOptions) =>
      withManager(options, async (m) => {
        const r = await m.yank(ADMIN, name, version, options.reason ?? null);
        return `Yanked release ${version} of ${r.displayName}${r.reason ? ` (${r.reason})` : ''}; serial ${r.serial}.`;
      }),
    );

  withStoreOptions(project.command('unyank').argument('<name>').argument('<version>'))
    .description('undo a yank')
    .action((name: string, version: string, options: StoreOptions) =>
      withManager(options, async (m) => {
        const r = await m.unyank(ADMIN, name, version);
        return `Un-yanked release ${version} of ${r.displayName}; serial ${r.serial}.`;
      }),
    );

  withStoreOptions(project.command('remove-file').argument('<name>').argument('<filename>'))
    .description('remove one file; its filename can never be uploaded again')
    .action((name: string, filename: string, options: StoreOptions) =>
      withManager(options, async (m) => {
        const r = await m.removeFile(ADMIN, name, filename);
        return `Removed ${filename} from ${r.displayName}; serial ${r.serial}.`;
      }),
    );

  withStoreOptions(project.command('remove-release').argument('<name>').argument('<version>'))
    .description('remove a release and all its files')
    .action((name: string, version: string, options: StoreOptions) =>
      withManager(options, async (m) => {
        const r = await m.removeRelease(ADMIN, name, version);
        return `Removed release ${version} of ${r.displayName} (${files(r.removedFiles)}); serial ${r.serial}.`;
      }),
    );

  withStoreOptions(project.command('remove').argument('<name>'))
    .description('remove a project with all its releases, files and roles (needs --yes)')
    // Command line only, unlike other options: a confirmation left in the environment would confirm every removal.
    .addOption(new Option('--yes', 'confirm the removal'))
    .action((name: string, options: StoreOptions) => {
      if (!options.yes) {
        throw new PyedgeError(
          'PYEDGE_BAD_REQUEST',
          `Removing project '${name}' deletes all its releases and files for good, and their filenames can never be uploaded again. Run again with --yes to confirm.`,
        );
      }
      return withManager(options, async (m) => {
        const r = await m.removeProject(ADMIN, name);
        return `Removed project ${r.displayName} (${files(r.removedFiles)}); serial ${r.serial}.`;
      });
    });

  withStoreOptions(project.command('roles').argument('<name>'))
    .description("list the project's Owners and Maintainers")
    .action((name: string, options: StoreOptions) =>
      withManager(options, async (m) => {
        const { roles } = await m.listRoles(ADMIN, name);
        return roles.map((r) => `${r.username}\t${r.role}`).join('\n');
      }),
    );

  withStoreOptions(project.command('add-role').argument('<name>').argument('<user>'))
    .description('give an existing user a role on the project (users are created by `pyedge token create`)')
    .addOption(envOption('--role <role>', 'Owner or Maintainer').choices(ROLES).makeOptionMandatory())
    .action((name: string, user: string, options: StoreOptions) =>
      withManager(options, async (m) => {
        const role = options.role as Role;
        const r = await m.setRole(ADMIN, name, user, role);
        return `${user} is now ${role === 'Owner' ? 'an Owner' : 'a Maintainer'} of ${r.displayName}; serial ${r.serial}.`;
      }),
    );

  withStoreOptions(project.command('remove-role').argument('<name>').argument('<user>'))
    .description("take a user's role away (the last Owner cannot be removed)")
    .action((name: string, user: string, options: StoreOptions) =>
      withManager(options, async (m) => {
        const r = await m.removeRole(ADMIN, name, user);
        return `${user} no longer has a role on ${r.displayName}; serial ${r.serial}.`;
      }),
    );

  withStoreOptions(project.command('status').argument('<name>').argument('<status>', PROJECT_STATUSES.join(', ')))
    .description('set the PEP 792 project status (archived blocks uploads; quarantined also hides the project)')
    .addOption(envOption('--reason <text>', 'why, shown to users'))
    .action((name: string, status: string, options: StoreOptions) =>
      withManager(options, async (m) => {
        const r = await m.setStatus(ADMIN, name, status as ProjectStatus, options.reason ?? null);
        return `Project ${r.displayName} is now ${status}${r.reason ? ` (${r.reason})` : ''}; serial ${r.serial}.`;
      }),
    );

  return project;
}
