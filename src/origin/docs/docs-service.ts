/**
 * Documentation uploads (`:action=doc_upload`): a zip of HTML is checked and
 * extracted into a fresh generation, then one put of the pointer switches
 * readers to it, then the change is recorded and the old generation removed.
 * A refused or failed upload leaves the published documentation as it was.
 */
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BlobStore } from '../../blobstore/blob-store.js';
import { PyedgeError } from '../../core/errors.js';
import type { ApiToken, Project } from '../../core/model.js';
import { isValidName, normalizeName } from '../../core/names.js';
import type { Database } from '../../db/database.js';
import { KeyedMutex } from '../upload/keyed-mutex.js';
import { field, type UploadForm } from '../upload/upload-form.js';
import { contentTypeFor } from './docs-content-types.js';
import {
  docsPrefix,
  encodePointer,
  generationPrefix,
  generationTime,
  newGeneration,
  pointerKey,
  type DocsPointer,
} from './docs-generations.js';
import { DEFAULT_DOCS_LIMITS, type DocsLimits } from './docs-limits.js';
import { DocsReader } from './docs-reader.js';
import { extractDocsZip, type EntryBody } from './docs-zip-extractor.js';

/** The part of the database documentation uploads need. */
export type DocsDatabase = Pick<Database, 'getProject' | 'getRole' | 'recordDocsUpload'>;

export interface DocsServiceOptions {
  /** Limits on one zip; unset ones take DEFAULT_DOCS_LIMITS. */
  readonly limits?: Partial<DocsLimits>;
  /** Where large entries are spooled while they are stored. */
  readonly spoolDir: string;
  /** Blob writes in flight at once during one extraction (default 8). */
  readonly concurrency?: number;
  /** How long a cached pointer is trusted, in milliseconds (default 5000). */
  readonly pointerTtlMs?: number;
  /**
   * Generations older than this (milliseconds, default one hour) that are not
   * current are leftovers of crashed uploads, removed after the next upload.
   */
  readonly staleGenerationMs?: number;
}

export interface DocsUploadOutcome {
  /** Serial of the 'docs upload' change. */
  readonly serial: number;
  readonly project: Project;
  readonly generation: string;
  readonly files: number;
  readonly bytes: number;
}

export class DocsService {
  readonly limits: DocsLimits;
  /** Serves what this service publishes; shares its pointer cache. */
  readonly reader: DocsReader;
  /** One upload per project at a time, so the generation an upload replaces is the one it read. */
  private readonly locks = new KeyedMutex();
  private readonly staleGenerationMs: number;

  constructor(
    private readonly db: DocsDatabase,
    private readonly blobs: BlobStore,
    private readonly log: Logger,
    private readonly options: DocsServiceOptions,
  ) {
    this.limits = Object.freeze({ ...DEFAULT_DOCS_LIMITS, ...options.limits });
    this.staleGenerationMs = options.staleGenerationMs ?? 60 * 60 * 1000;
    this.reader = new DocsReader(blobs, async (name) => (await db.getProject(name)) !== undefined, options.pointerTtlMs);
  }

  /** A `doc_upload` form: fields `name` and the file part `content`. The spooled file is consumed. */
  async uploadForm(form: UploadForm, token: ApiToken): Promise<DocsUploadOutcome> {
    const file = form.file;
    try {
      const name = field(form, 'name')?.trim();
      if (!name) throw new PyedgeError('PYEDGE_BAD_REQUEST', "Invalid value for name. Error: This field is required (the project whose documentation this is).");
      if (!file || file.size === 0) {
        throw new PyedgeError('PYEDGE_BAD_REQUEST', 'Upload payload does not have a file: send the documentation zip as the form part "content".');
      }
      return await this.upload(file.path, name, token);
    } finally {
      if (file) await rm(file.path, { force: true });
    }
  }

  /**
   * Publish the zip at `zipPath` (consumed) as the documentation of project `name`.
   * Throws PYEDGE_BAD_REQUEST (bad name), PYEDGE_NOT_FOUND (no such project),
   * PYEDGE_FORBIDDEN (token scope or no role), PYEDGE_INVALID_DISTRIBUTION or
   * PYEDGE_TOO_LARGE (the zip); then nothing changed.
   */
  async upload(zipPath: string, name: string, token: ApiToken): Promise<DocsUploadOutcome> {
    try {
      if (!isValidName(name)) {
        throw new PyedgeError(
          'PYEDGE_BAD_REQUEST',
          "Invalid value for name. Error: Start and end with a letter or numeral containing only ASCII numeric and '.', '_' and '-'.",
          { field: 'name' },
        );
      }
      const normalized = normalizeName(name);
      if (token.projectScope !== null && token.projectScope !== normalized) {
        throw new PyedgeError(
          'PYEDGE_FORBIDDEN',
          `This token is scoped to project '${token.projectScope}' and cannot upload documentation for '${name}'.`,
          { project: normalized },
        );
      }
      const project = await this.db.getProject(normalized);
      if (!project) {
        throw new PyedgeError(
          'PYEDGE_NOT_FOUND',
          `There is no project named '${name}' on this index: upload a distribution of it before its documentation.`,
          { project: normalized },
        );
      }
      if ((await this.db.getRole(token.userId, normalized)) === null) {
        throw new PyedgeError(
          'PYEDGE_FORBIDDEN',
          `The user '${token.username}' isn't allowed to upload documentation for project '${project.name}'.`,
          { project: normalized, user: token.username },
        );
      }
      return await this.locks.run(normalized, () => this.publish(project, zipPath, token));
    } finally {
      await rm(zipPath, { force: true });
    }
  }

  private async publish(project: Project, zipPath: string, token: ApiToken): Promise<DocsUploadOutcome> {
    const normalized = project.normalizedName;
    const previous = await this.reader.readPointer(normalized);
    const generation = newGeneration();
    const prefix = generationPrefix(normalized, generation);
    const store = (path: string, body: EntryBody): Promise<void> => {
      const put = { contentType: contentTypeFor(path) };
      return body.kind === 'bytes' ? this.blobs.put(prefix + path, body.bytes, put) : this.blobs.putFile(prefix + path, body.path, put);
    };
    let extracted: { files: number; bytes: number };
    try {
      extracted = await extractDocsZip(zipPath, {
        limits: this.limits,
        spoolDir: this.options.spoolDir,
        store,
        ...(this.options.concurrency === undefined ? {} : { concurrency: this.options.concurrency }),
      });
    } catch (err) {
      await this.removeGeneration(normalized, generation);
      throw err;
    }

    const pointer: DocsPointer = {
      generation,
      files: extracted.files,
      bytes: extracted.bytes,
      uploadedAt: new Date().toISOString(),
      uploadedBy: token.username,
    };
    await this.switchTo(normalized, pointer);

    let serial: number;
    try {
      serial = await this.db.recordDocsUpload(normalized, token.username);
    } catch (err) {
      // The changelog must not miss a switch readers can see: put the old documentation back.
      await this.rollBack(normalized, previous, generation);
      throw err;
    }
    this.log.info({ project: normalized, generation, files: extracted.files, bytes: extracted.bytes, serial }, 'docs published');
    await this.removeOldGenerations(normalized, generation, previous?.generation ?? null);
    return { serial, project, generation, files: extracted.files, bytes: extracted.bytes };
  }

  /** The one write readers observe. */
  private async switchTo(normalized: string, pointer: DocsPointer): Promise<void> {
    try {
      await this.blobs.put(pointerKey(normalized), encodePointer(pointer), { contentType: 'application/json' });
    } catch (err) {
      // A put can fail after it landed (a lost answer): trust what the store now holds.
      const now = await this.reader.readPointer(normalized).catch(() => null);
      if (now?.generation !== pointer.generation) {
        this.reader.forget(normalized);
        await this.removeGeneration(normalized, pointer.generation);
        throw new PyedgeError('PYEDGE_STORAGE', 'Could not publish the documentation: the blob store refused the write. Try again.', {}, { cause: err });
      }
    }
    this.reader.remember(normalized, pointer);
  }

  private async rollBack(normalized: string, previous: DocsPointer | null, generation: string): Promise<void> {
    try {
      if (previous) await this.blobs.put(pointerKey(normalized), encodePointer(previous), { contentType: 'application/json' });
      else await this.blobs.delete(pointerKey(normalized));
      this.reader.remember(normalized, previous);
      await this.removeGeneration(normalized, generation);
    } catch (err) {
      this.reader.forget(normalized);
      this.log.error({ err, project: normalized, generation }, 'could not roll back a documentation switch whose change was not recorded');
    }
  }

  /** Delete every blob of one generation (best effort: a leftover is unreachable and removed later). */
  private async removeGeneration(normalized: string, generation: string): Promise<void> {
    try {
      const keys: string[] = [];
      for await (const e of this.blobs.list(generationPrefix(normalized, generation))) keys.push(e.key);
      await this.deleteAll(keys);
    } catch (err) {
      this.log.error({ err, project: normalized, generation }, 'could not remove a documentation generation');
    }
  }

  /** Remove the generation just replaced and leftovers of crashed uploads; never the current one. */
  private async removeOldGenerations(normalized: string, current: string, previous: string | null): Promise<void> {
    const prefix = docsPrefix(normalized);
    const staleBefore = Date.now() - this.staleGenerationMs;
    try {
      const keys: string[] = [];
      for await (const e of this.blobs.list(prefix)) {
        const rest = e.key.slice(prefix.length);
        const slash = rest.indexOf('/');
        if (slash < 0) continue;
        const generation = rest.slice(0, slash);
        if (generation === current) continue;
        const born = generationTime(generation);
        if (generation === previous || (born !== null && born < staleBefore)) keys.push(e.key);
      }
      await this.deleteAll(keys);
    } catch (err) {
      this.log.warn({ err, project: normalized }, 'could not remove old documentation');
    }
  }

  private async deleteAll(keys: readonly string[]): Promise<void> {
    const width = 16;
    for (let i = 0; i < keys.length; i += width) {
      await Promise.all(keys.slice(i, i + width).map((k) => this.blobs.delete(k)));
    }
  }
}
