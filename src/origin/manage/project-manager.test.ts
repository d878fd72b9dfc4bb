import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { isPyedgeError, type ErrorCode } from '../../core/errors.js';
import type { ApiToken, User } from '../../core/model.js';
import { FolderBlobStore } from '../../blobstore/folder/folder-blob-store.js';
import { upload } from '../../db/contract-fixtures.js';
import type { Database } from '../../db/database.js';
import { SqliteDatabase } from '../../db/sqlite/sqlite-database.js';
import { ADMIN, ProjectManager, type Requester } from './project-manager.js';

const silent = pino({ level: 'silent' });

function tokenOf(user: User, projectScope: string | null = null): Requester {
  const token: ApiToken = { id: `t-${user.username}`, userId: user.id, username: user.username, projectScope, secretHash: '', createdAt: '' };
  return { kind: 'token', token };
}

async function refused(promise: Promise<unknown>, code: ErrorCode, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isPyedgeError(err), String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

describe('ProjectManager', () => {
  let dir: string;
  let db: Database;
  let blobs: FolderBlobStore;
  let manager: ProjectManager;
  let alice: User;
  let bob: User;
  let eve: User;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pyedge-manage-'));
    db = new SqliteDatabase(join(dir, 'index.db'));
    await db.migrate();
    blobs = new FolderBlobStore(join(dir, 'blobs'));
    manager = new ProjectManager(db, blobs, silent);
    alice = await db.ensureUser('alice');
    bob = await db.ensureUser('bob');
    eve = await db.ensureUser('eve');
    for (const [version, filename] of [
      ['1.0', 'foo_bar-1.0-py3-none-any.whl'],
      ['2.0', 'foo_bar-2.0-py3-none-any.whl'],
      ['2.0', 'foo_bar-2.0.tar.gz'],
      ['3.0', 'foo_bar-3.0-py3-none-any.whl'],
    ] as const) {
      const input = upload(alice, 'Foo_Bar', version, filename);
      await db.addFile(input);
      await blobs.put(input.file.path, new TextEncoder().encode(filename));
      if (filename.endsWith('.whl')) await blobs.put(`${input.file.path}.metadata`, new TextEncoder().encode('Metadata-Version: 2.4\n'));
    }
    await db.addFile(upload(eve, 'other', '1.0', 'other-1.0.tar.gz'));
    await db.setRole('foo-bar', 'bob', 'Maintainer', 'alice');
  });

  after(async () => {
    await db.close();
    await blobs.close();
    await rm(dir, { recursive: true, force: true });
  });

  const keys = async (): Promise<string[]> => {
    const out: string[] = [];
    for await (const entry of blobs.list('packages/')) out.push(entry.key);
    return out;
  };

  it('an Owner yanks with a trimmed reason, recorded under their name, by any spelling of the project', async () => {
    const r = await manager.yank(tokenOf(alice), 'FOO.bar', '1.0', '  superseded  ');
    assert.deepEqual([r.project, r.displayName, r.reason, r.serial], ['foo-bar', 'Foo_Bar', 'superseded', await db.lastSerial()]);
    const [change] = await db.changesSince(r.serial - 1, 1);
    assert.deepEqual([change?.action, change?.detail, change?.submittedBy], ['yank release', 'superseded', 'alice']);
    const un = await manager.unyank(tokenOf(alice, 'foo-bar'), 'foo-bar', '1.0');
    assert.equal(un.serial, r.serial + 1);
    const empty = await manager.yank(ADMIN, 'foo-bar', '1.0', '   ');
    assert.equal(empty.reason, null, 'a blank reason is no reason');
    assert.equal((await db.changesSince(empty.serial - 1, 1))[0]?.submittedBy, null, 'the administrator has no user name');
    await manager.unyank(ADMIN, 'foo-bar', '1.0');
    await refused(manager.yank(tokenOf(alice), 'foo-bar', '1.0', 'x'.repeat(1001)), 'PYEDGE_BAD_REQUEST', /at most 1000 characters/);
  });

  it('Maintainers, strangers and tokens scoped elsewhere cannot manage, and nothing is written', async () => {
    const before = await db.lastSerial();
    await refused(manager.yank(tokenOf(bob), 'foo-bar', '1.0'), 'PYEDGE_FORBIDDEN', /Only an Owner of project 'Foo_Bar' can yank releases; 'bob' is a Maintainer/);
    await refused(manager.removeFile(tokenOf(bob), 'foo-bar', 'foo_bar-1.0-py3-none-any.whl'), 'PYEDGE_FORBIDDEN', /Only an Owner/);
    await refused(manager.setRole(tokenOf(bob), 'foo-bar', 'bob', 'Owner'), 'PYEDGE_FORBIDDEN', /Only an Owner .* manage roles/);
    await refused(manager.setStatus(tokenOf(bob), 'foo-bar', 'archived'), 'PYEDGE_FORBIDDEN', /Only an Owner/);
    await refused(manager.removeProject(tokenOf(eve), 'foo-bar'), 'PYEDGE_FORBIDDEN', /The user 'eve' has no role on project 'Foo_Bar'/);
    await refused(manager.yank(tokenOf(alice, 'other'), 'foo-bar', '1.0'), 'PYEDGE_FORBIDDEN', /scoped to project 'other' and cannot manage project 'Foo_Bar'/);
    await refused(manager.yank(tokenOf(alice), 'nothing', '1.0'), 'PYEDGE_NOT_FOUND', /No project named 'nothing'/);
    await refused(manager.yank(tokenOf(alice), 'foo-bar', '9.0'), 'PYEDGE_NOT_FOUND', /No release '9\.0' of project 'Foo_Bar'/);
    assert.equal(await db.lastSerial(), before);
    // A Maintainer may still see who holds roles.
    const { roles } = await manager.listRoles(tokenOf(bob), 'foo-bar');
    assert.deepEqual(roles, [{ username: 'alice', role: 'Owner' }, { username: 'bob', role: 'Maintainer' }]);
    await refused(manager.listRoles(tokenOf(eve), 'foo-bar'), 'PYEDGE_FORBIDDEN', /no role/);
  });

  it('only the administrator quarantines a project or lifts the quarantine; Owners archive and unarchive', async () => {
    await refused(manager.setStatus(tokenOf(alice), 'foo-bar', 'quarantined', 'oops'), 'PYEDGE_FORBIDDEN', /Only an administrator can quarantine/);
    const archived = await manager.setStatus(tokenOf(alice), 'foo-bar', 'archived', ' done ');
    assert.equal(archived.reason, 'done');
    assert.deepEqual([(await db.getProject('foo-bar'))?.status, (await db.getProject('foo-bar'))?.statusReason], ['archived', 'done']);
    const active = await manager.setStatus(tokenOf(alice), 'foo-bar', 'active', 'ignored');
    assert.equal(active.reason, null);

    await manager.setStatus(ADMIN, 'foo-bar', 'quarantined', 'malware report');
    const before = await db.lastSerial();
    await refused(manager.setStatus(tokenOf(alice), 'foo-bar', 'active'), 'PYEDGE_FORBIDDEN', /quarantined: only an administrator can change it/);
    await refused(manager.yank(tokenOf(alice), 'foo-bar', '1.0'), 'PYEDGE_FORBIDDEN', /quarantined/);
    assert.equal(await db.lastSerial(), before);
    assert.equal((await manager.listRoles(tokenOf(alice), 'foo-bar')).roles.length, 2, 'reading stays allowed');
    await manager.setStatus(ADMIN, 'foo-bar', 'active');
    await refused(manager.setStatus(ADMIN, 'foo-bar', 'gone' as 'active'), 'PYEDGE_BAD_REQUEST', /Invalid project status 'gone'/);
  });

  it('removals delete the files’ blobs and their .metadata siblings, and nothing else', async () => {
    const before = await keys();
    const wheel = upload(alice, 'Foo_Bar', '1.0', 'foo_bar-1.0-py3-none-any.whl').file.path;
    assert.ok(before.includes(wheel) && before.includes(`${wheel}.metadata`));
    const r = await manager.removeFile(tokenOf(alice), 'foo-bar', 'foo_bar-1.0-py3-none-any.whl');
    assert.equal(r.removedFiles, 1);
    assert.deepEqual(await keys(), before.filter((k) => k !== wheel && k !== `${wheel}.metadata`));

    const release = await manager.removeRelease(ADMIN, 'foo-bar', '2.0');
    assert.equal(release.removedFiles, 2);
    const left = await keys();
    assert.equal(left.length, 2, left.join('\n'));
    assert.ok(left.every((k) => k.includes('foo_bar-3.0-py3-none-any.whl')));
  });

  it('a removal commits even when the blob store cannot delete, and says so in the log', async () => {
    const warnings: unknown[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) });
    class ReadOnlyStore extends FolderBlobStore {
      override async delete(): Promise<void> {
        throw new Error('bucket is read-only');
      }
    }
    const failing = new ReadOnlyStore(join(dir, 'blobs'));
    const r = await new ProjectManager(db, failing, logger).removeProject(tokenOf(alice), 'foo-bar');
    assert.equal(r.removedFiles, 1);
    assert.equal(await db.getProject('foo-bar'), undefined);
    assert.equal(warnings.length, 2, 'the file and its metadata');
    for (const w of warnings as { msg: string; err: { message: string }; key: string }[]) {
      assert.equal(w.msg, 'could not delete the blob of a removed file');
      assert.equal(w.err.message, 'bucket is read-only');
    }
    assert.ok((await keys()).length > 0, 'the blobs are still there');
    assert.equal((await db.changesSince(r.serial - 1, 1))[0]?.action, 'remove project');
  });
});
