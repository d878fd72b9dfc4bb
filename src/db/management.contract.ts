/**
 * The project-management part of the Database contract: yanks, removals, roles,
 * status and docs, each taking exactly one serial, or nothing when it fails.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ErrorCode } from '../core/errors.js';
import type { Change } from '../core/model.js';
import type { Database } from './database.js';
import { rejectsWith, upload, withDatabase, type MakeDatabase } from './contract-fixtures.js';

/** What a failed call must leave untouched. */
async function snapshotOf(db: Database): Promise<unknown> {
  return {
    stats: await db.stats(),
    changes: await db.changesSince(0, 10_000),
    projects: await db.listProjects(),
  };
}

/** Asserts that `call` fails with `code` (and `message`) and writes nothing. */
async function failsCleanly(db: Database, call: () => Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  const before = await snapshotOf(db);
  await rejectsWith(call(), code, message);
  assert.deepEqual(await snapshotOf(db), before, 'a failed call must write nothing');
}

/** The changelog entry with this serial, as a compact tuple. */
async function changeAt(db: Database, serial: number): Promise<unknown[]> {
  const [c] = await db.changesSince(serial - 1, 1);
  assert.ok(c, `no change ${serial}`);
  return tuple(c);
}

function tuple(c: Change): unknown[] {
  return [c.serial, c.action, c.name, c.normalizedName, c.version, c.filename, c.detail, c.submittedBy];
}

/** alice owns Foo_Bar with releases 1.0 (sdist + wheel) and 2.0 (wheel); serial 6 after. */
async function seed(db: Database): Promise<void> {
  const alice = await db.ensureUser('alice');
  await db.addFile(upload(alice, 'Foo_Bar', '1.0', 'foo_bar-1.0.tar.gz'));
  await db.addFile(upload(alice, 'Foo_Bar', '1.0', 'foo_bar-1.0-py3-none-any.whl'));
  await db.addFile(upload(alice, 'Foo_Bar', '2.0', 'foo_bar-2.0-py3-none-any.whl'));
  assert.equal(await db.lastSerial(), 6);
}

export function runManagementContract(label: string, make: MakeDatabase): void {
  const withDb = (fn: (db: Database) => Promise<void>): Promise<void> => withDatabase(make, fn);

  describe(`Database contract, project management: ${label}`, () => {
    it('yankRelease and unyankRelease take one serial each and show on the release and its files', () =>
      withDb(async (db) => {
        await seed(db);
        // Any spelling of the version finds the release.
        assert.equal(await db.yankRelease('foo-bar', '2.0.0', 'broken build', 'alice'), 7);
        assert.deepEqual(await changeAt(db, 7), [7, 'yank release', 'Foo_Bar', 'foo-bar', '2.0', null, 'broken build', 'alice']);
        let state = await db.getProjectState('foo-bar');
        assert.ok(state);
        assert.equal(state.project.lastSerial, 7);
        const v2 = state.releases.find((r) => r.version === '2.0');
        assert.deepEqual([v2?.yanked, v2?.yankedReason], [true, 'broken build']);
        assert.deepEqual(
          state.files.map((f) => [f.filename, f.yanked, f.yankedReason]),
          [
            ['foo_bar-1.0-py3-none-any.whl', false, null],
            ['foo_bar-1.0.tar.gz', false, null],
            ['foo_bar-2.0-py3-none-any.whl', true, 'broken build'],
          ],
        );
        assert.equal(await db.yankRelease('foo-bar', '1.0', null, null), 8, 'a yank without a reason, by an administrator');
        assert.deepEqual(await changeAt(db, 8), [8, 'yank release', 'Foo_Bar', 'foo-bar', '1.0', null, null, null]);

        assert.equal(await db.unyankRelease('foo-bar', '2.0', 'alice'), 9);
        assert.deepEqual(await changeAt(db, 9), [9, 'unyank release', 'Foo_Bar', 'foo-bar', '2.0', null, null, 'alice']);
        state = await db.getProjectState('foo-bar');
        const again = state?.releases.find((r) => r.version === '2.0');
        assert.deepEqual([again?.yanked, again?.yankedReason], [false, null]);
        assert.equal(state?.project.lastSerial, 9);
        assert.deepEqual((await db.listProjects()).map((p) => p.lastSerial), [9]);

        await failsCleanly(db, () => db.unyankRelease('foo-bar', '2.0', 'alice'), 'PYEDGE_BAD_REQUEST', /Release '2\.0' of project 'Foo_Bar' is not yanked/);
        await failsCleanly(db, () => db.yankRelease('foo-bar', '3.0', null, 'alice'), 'PYEDGE_NOT_FOUND', /^No release '3\.0' of project 'Foo_Bar'\.$/);
        await failsCleanly(db, () => db.yankRelease('foo-bar', 'not a version', null, 'alice'), 'PYEDGE_NOT_FOUND', /No release 'not a version'/);
        await failsCleanly(db, () => db.yankRelease('nothing', '1.0', null, 'alice'), 'PYEDGE_NOT_FOUND', /No project named 'nothing'/);
        await failsCleanly(db, () => db.unyankRelease('nothing', '1.0', 'alice'), 'PYEDGE_NOT_FOUND', /No project named 'nothing'/);
        assert.equal(await db.lastSerial(), 9);
      }));

    it('removeFile deletes one file, returns its blob key and keeps its filename used forever', () =>
      withDb(async (db) => {
        await seed(db);
        const alice = await db.ensureUser('alice');
        const wheel = upload(alice, 'Foo_Bar', '1.0', 'foo_bar-1.0-py3-none-any.whl');
        const result = await db.removeFile('foo-bar', 'foo_bar-1.0-py3-none-any.whl', 'alice');
        assert.deepEqual(result, { serial: 7, paths: [wheel.file.path] });
        assert.deepEqual(await changeAt(db, 7), [7, 'remove file', 'Foo_Bar', 'foo-bar', '1.0', 'foo_bar-1.0-py3-none-any.whl', null, 'alice']);
        const state = await db.getProjectState('foo-bar');
        assert.deepEqual(state?.files.map((f) => f.filename), ['foo_bar-1.0.tar.gz', 'foo_bar-2.0-py3-none-any.whl']);
        assert.equal(state?.releases.length, 2, 'the release stays');
        assert.equal(state?.project.lastSerial, 7);
        assert.equal(await db.isFilenameUsed('foo_bar-1.0-py3-none-any.whl'), true);
        assert.equal(await db.isPathReferenced(wheel.file.path), false);

        await failsCleanly(db, () => db.addFile(wheel), 'PYEDGE_FILENAME_REUSED', /already been used/);
        await failsCleanly(db, () => db.removeFile('foo-bar', 'foo_bar-1.0-py3-none-any.whl', 'alice'), 'PYEDGE_NOT_FOUND', /No file 'foo_bar-1\.0-py3-none-any\.whl' in project 'Foo_Bar'/);
        // A file is removed only through its own project.
        await db.addFile(upload(alice, 'other', '1.0', 'other-1.0.tar.gz'));
        await failsCleanly(db, () => db.removeFile('foo-bar', 'other-1.0.tar.gz', 'alice'), 'PYEDGE_NOT_FOUND', /No file 'other-1\.0\.tar\.gz'/);
        assert.equal((await db.getProjectState('other'))?.files.length, 1);
      }));

    it('removeRelease deletes the release and its files and returns their blob keys', () =>
      withDb(async (db) => {
        await seed(db);
        const alice = await db.ensureUser('alice');
        const paths = ['foo_bar-1.0.tar.gz', 'foo_bar-1.0-py3-none-any.whl'].map((f) => upload(alice, 'Foo_Bar', '1.0', f).file.path).sort();
        const result = await db.removeRelease('foo-bar', '1', null);
        assert.equal(result.serial, 7);
        assert.deepEqual([...result.paths].sort(), paths);
        assert.deepEqual(await changeAt(db, 7), [7, 'remove release', 'Foo_Bar', 'foo-bar', '1.0', null, null, null]);
        const state = await db.getProjectState('foo-bar');
        assert.deepEqual(state?.releases.map((r) => r.version), ['2.0']);
        assert.deepEqual(state?.files.map((f) => f.filename), ['foo_bar-2.0-py3-none-any.whl']);
        for (const p of paths) assert.equal(await db.isPathReferenced(p), false);
        assert.equal(await db.isFilenameUsed('foo_bar-1.0.tar.gz'), true);
        await failsCleanly(db, () => db.addFile(upload(alice, 'Foo_Bar', '1.0', 'foo_bar-1.0.tar.gz')), 'PYEDGE_FILENAME_REUSED');
        await failsCleanly(db, () => db.removeRelease('foo-bar', '1.0', null), 'PYEDGE_NOT_FOUND', /^No release '1\.0' of project 'Foo_Bar'\.$/);
        assert.deepEqual((await db.listProjects()).map((p) => [p.normalizedName, p.lastSerial]), [['foo-bar', 7]]);

        // A release can be uploaded again under new filenames.
        const back = await db.addFile(upload(alice, 'Foo_Bar', '1.0', 'foo_bar-1.0-1-py3-none-any.whl'));
        assert.equal(back.createdRelease, true);

        // Without releases the project leaves the index but keeps existing (and its owner).
        await db.removeRelease('foo-bar', '1.0', 'alice');
        await db.removeRelease('foo-bar', '2.0', 'alice');
        assert.deepEqual(await db.listProjects(), []);
        assert.equal((await db.getProject('foo-bar'))?.lastSerial, await db.lastSerial());
        assert.equal(await db.getRole(alice.id, 'foo-bar'), 'Owner');
      }));

    it('removeProject deletes everything of the project but its changelog and used filenames', () =>
      withDb(async (db) => {
        await seed(db);
        const alice = await db.ensureUser('alice');
        await db.addFile(upload(alice, 'keep', '1.0', 'keep-1.0.tar.gz'));
        const before = await db.stats();
        const result = await db.removeProject('foo-bar', 'alice');
        assert.equal(result.serial, before.lastSerial + 1);
        assert.equal(result.paths.length, 3);
        assert.deepEqual(await changeAt(db, result.serial), [result.serial, 'remove project', 'Foo_Bar', 'foo-bar', null, null, null, 'alice']);
        assert.equal(await db.getProjectState('foo-bar'), undefined);
        assert.equal(await db.getProject('foo-bar'), undefined);
        assert.equal(await db.getRole(alice.id, 'foo-bar'), null);
        assert.deepEqual((await db.listProjects()).map((p) => p.normalizedName), ['keep']);
        for (const p of result.paths) assert.equal(await db.isPathReferenced(p), false);
        const after = await db.stats();
        assert.deepEqual(
          [after.projects, after.releases, after.files, after.changes, after.lastSerial],
          [before.projects - 1, before.releases - 2, before.files - 3, before.changes + 1, before.lastSerial + 1],
        );
        await failsCleanly(db, () => db.removeProject('foo-bar', 'alice'), 'PYEDGE_NOT_FOUND', /No project named 'foo-bar'/);

        // The name is free again, but not the old filenames.
        const bob = await db.ensureUser('bob');
        await failsCleanly(db, () => db.addFile(upload(bob, 'foo-bar', '2.0', 'foo_bar-2.0-py3-none-any.whl')), 'PYEDGE_FILENAME_REUSED');
        const fresh = await db.addFile(upload(bob, 'foo-bar', '3.0', 'foo_bar-3.0.tar.gz'));
        assert.equal(fresh.createdProject, true);
        assert.equal(await db.getRole(bob.id, 'foo-bar'), 'Owner');
        assert.equal(await db.getRole(alice.id, 'foo-bar'), null);
      }));

    it('setRole, removeRole and listRoles manage owners and maintainers, never leaving a project without an Owner', () =>
      withDb(async (db) => {
        await seed(db);
        const alice = await db.ensureUser('alice');
        const bob = await db.ensureUser('bob');
        await db.ensureUser('carol');
        assert.deepEqual(await db.listRoles('foo-bar'), [{ username: 'alice', role: 'Owner' }]);

        assert.equal(await db.setRole('foo-bar', 'bob', 'Maintainer', 'alice'), 7);
        assert.deepEqual(await changeAt(db, 7), [7, 'add owner', 'Foo_Bar', 'foo-bar', null, null, 'Maintainer', 'alice']);
        assert.equal(await db.getRole(bob.id, 'foo-bar'), 'Maintainer');
        // A Maintainer may upload.
        await db.addFile(upload(bob, 'foo-bar', '3.0', 'foo_bar-3.0.tar.gz'));
        const afterUpload = await db.lastSerial();

        await failsCleanly(db, () => db.setRole('foo-bar', 'bob', 'Maintainer', 'alice'), 'PYEDGE_BAD_REQUEST', /already a Maintainer/);
        await failsCleanly(db, () => db.setRole('foo-bar', 'dave', 'Owner', 'alice'), 'PYEDGE_NOT_FOUND', /No user named 'dave'/);
        await failsCleanly(db, () => db.setRole('nothing', 'bob', 'Owner', 'alice'), 'PYEDGE_NOT_FOUND', /No project named 'nothing'/);
        await failsCleanly(db, () => db.removeRole('foo-bar', 'alice', 'alice'), 'PYEDGE_FORBIDDEN', /last Owner of project 'Foo_Bar'/);
        await failsCleanly(db, () => db.setRole('foo-bar', 'alice', 'Maintainer', 'alice'), 'PYEDGE_FORBIDDEN', /last Owner/);
        await failsCleanly(db, () => db.removeRole('foo-bar', 'carol', 'alice'), 'PYEDGE_NOT_FOUND', /User 'carol' has no role on project 'Foo_Bar'/);

        assert.equal(await db.setRole('foo-bar', 'carol', 'Owner', null), afterUpload + 1);
        assert.deepEqual(await db.listRoles('foo-bar'), [
          { username: 'alice', role: 'Owner' },
          { username: 'carol', role: 'Owner' },
          { username: 'bob', role: 'Maintainer' },
        ]);
        // With a second Owner, alice can step down to Maintainer, then be removed.
        assert.equal(await db.setRole('foo-bar', 'alice', 'Maintainer', 'carol'), afterUpload + 2);
        assert.equal(await db.removeRole('foo-bar', 'alice', 'carol'), afterUpload + 3);
        assert.deepEqual(await changeAt(db, afterUpload + 3), [afterUpload + 3, 'remove owner', 'Foo_Bar', 'foo-bar', null, null, 'Maintainer', 'carol']);
        assert.equal(await db.getRole(alice.id, 'foo-bar'), null);
        await failsCleanly(db, () => db.addFile(upload(alice, 'foo-bar', '4.0', 'foo_bar-4.0.tar.gz')), 'PYEDGE_FORBIDDEN', /isn't allowed/);
        await failsCleanly(db, () => db.removeRole('foo-bar', 'carol', 'carol'), 'PYEDGE_FORBIDDEN', /last Owner/);
        assert.equal((await db.getProject('foo-bar'))?.lastSerial, afterUpload + 3);
        await rejectsWith(db.listRoles('nothing'), 'PYEDGE_NOT_FOUND', /No project named 'nothing'/);
      }));

    it('setProjectStatus records PEP 792 status; archived stays listed, quarantined leaves the index', () =>
      withDb(async (db) => {
        await seed(db);
        const alice = await db.ensureUser('alice');
        assert.equal(await db.setProjectStatus('foo-bar', 'archived', 'no longer maintained', 'alice'), 7);
        assert.deepEqual(await changeAt(db, 7), [7, 'set status', 'Foo_Bar', 'foo-bar', null, null, 'archived', 'alice']);
        let project = await db.getProject('foo-bar');
        assert.deepEqual([project?.status, project?.statusReason, project?.lastSerial], ['archived', 'no longer maintained', 7]);
        assert.deepEqual((await db.listProjects()).map((p) => [p.normalizedName, p.lastSerial]), [['foo-bar', 7]]);
        await failsCleanly(db, () => db.addFile(upload(alice, 'foo-bar', '3.0', 'foo_bar-3.0.tar.gz')), 'PYEDGE_FORBIDDEN', /archived/);

        assert.equal(await db.setProjectStatus('foo-bar', 'quarantined', 'malware', null), 8);
        assert.deepEqual(await db.listProjects(), []);
        const state = await db.getProjectState('foo-bar');
        assert.deepEqual([state?.project.status, state?.project.statusReason, state?.files.length], ['quarantined', 'malware', 3]);

        assert.equal(await db.setProjectStatus('foo-bar', 'active', 'ignored', null), 9);
        project = await db.getProject('foo-bar');
        assert.deepEqual([project?.status, project?.statusReason], ['active', null]);
        assert.equal((await db.listProjects()).length, 1);
        await db.addFile(upload(alice, 'foo-bar', '3.0', 'foo_bar-3.0.tar.gz'));

        await failsCleanly(db, () => db.setProjectStatus('foo-bar', 'frozen' as 'active', null, 'alice'), 'PYEDGE_BAD_REQUEST', /Invalid project status 'frozen'/);
        await failsCleanly(db, () => db.setProjectStatus('nothing', 'archived', null, 'alice'), 'PYEDGE_NOT_FOUND', /No project named 'nothing'/);
      }));

    it('recordDocsUpload writes a docs upload change', () =>
      withDb(async (db) => {
        await seed(db);
        assert.equal(await db.recordDocsUpload('foo-bar', 'alice'), 7);
        assert.deepEqual(await changeAt(db, 7), [7, 'docs upload', 'Foo_Bar', 'foo-bar', null, null, null, 'alice']);
        assert.equal((await db.getProject('foo-bar'))?.lastSerial, 7);
        await failsCleanly(db, () => db.recordDocsUpload('nothing', 'alice'), 'PYEDGE_NOT_FOUND', /No project named 'nothing'/);
      }));

    it('management writes racing uploads and each other keep serials 1..N without gaps', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        await db.ensureUser('bob');
        for (let i = 0; i < 4; i++) await db.addFile(upload(alice, `p${i}`, '1.0', `p${i}-1.0.tar.gz`));
        const outcomes = await Promise.allSettled([
          ...Array.from({ length: 4 }, (_, i) => db.addFile(upload(alice, `p${i}`, '2.0', `p${i}-2.0.tar.gz`))),
          db.yankRelease('p0', '1.0', 'old', 'alice'),
          db.setRole('p1', 'bob', 'Maintainer', 'alice'),
          db.setProjectStatus('p2', 'archived', null, 'alice'),
          db.removeFile('p3', 'p3-1.0.tar.gz', 'alice'),
          db.removeRelease('p3', '9.9', 'alice'), // fails: no such release
          db.recordDocsUpload('p0', 'alice'),
          db.unyankRelease('p1', '1.0', 'alice'), // fails: not yanked
        ]);
        const failed = outcomes.filter((o) => o.status === 'rejected');
        // p2's upload may land before or after the archive; every other call but the two bad ones lands.
        assert.ok(failed.length === 2 || failed.length === 3, failed.map((o) => String(o.reason)).join('\n'));
        const last = await db.lastSerial();
        const changes = await db.changesSince(0, 1000);
        assert.deepEqual(changes.map((c) => c.serial), Array.from({ length: last }, (_, i) => i + 1));
        const landed = (list: readonly PromiseSettledResult<unknown>[]): number => list.filter((o) => o.status === 'fulfilled').length;
        // Seeding took 3 serials per project; an upload of a new release takes 2, a management write 1.
        assert.equal(changes.length, 4 * 3 + 2 * landed(outcomes.slice(0, 4)) + landed(outcomes.slice(4)));
        for (const p of await db.listProjects()) {
          const newest = Math.max(...changes.filter((c) => c.normalizedName === p.normalizedName).map((c) => c.serial));
          assert.equal(p.lastSerial, newest, p.normalizedName);
        }
      }));
  });
}
