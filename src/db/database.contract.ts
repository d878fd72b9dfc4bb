/**
 * The behaviour every Database back-end must show, as node:test tests. Each
 * back-end's test file calls `runDatabaseContract` with a factory for a fresh,
 * empty database.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPyedgeError } from '../core/errors.js';
import type { AddFileInput, Database } from './database.js';
import { rejectsWith, upload, withDatabase, type MakeDatabase } from './contract-fixtures.js';
import { runManagementContract } from './management.contract.js';

export type { MakeDatabase } from './contract-fixtures.js';

export function runDatabaseContract(label: string, make: MakeDatabase): void {
  /** Runs `fn` on a fresh, migrated database and always cleans up. */
  const withDb = (fn: (db: Database) => Promise<void>): Promise<void> => withDatabase(make, fn);

  describe(`Database contract: ${label}`, () => {
    it('migrating twice is harmless and starts empty', () =>
      withDb(async (db) => {
        await db.migrate();
        const stats = await db.stats();
        assert.deepEqual(stats, { projects: 0, releases: 0, files: 0, changes: 0, users: 0, tokens: 0, lastSerial: 0 });
        assert.equal(await db.lastSerial(), 0);
        assert.deepEqual(await db.listProjects(), []);
      }));

    it('ensureUser creates a user once and returns the same one after', () =>
      withDb(async (db) => {
        const a = await db.ensureUser('alice');
        const again = await db.ensureUser('alice');
        const b = await db.ensureUser('bob');
        assert.deepEqual(again, a);
        assert.notEqual(a.id, b.id);
        assert.equal(a.username, 'alice');
        assert.match(a.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.deepEqual(await db.getUser('alice'), a);
        assert.equal(await db.getUser('carol'), undefined);
        assert.equal((await db.stats()).users, 2);
      }));

    it('tokens round trip with their user and scope', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        await db.createToken({ id: 'tok-all', userId: alice.id, projectScope: null, secretHash: 'h1' });
        await db.createToken({ id: 'tok-foo', userId: alice.id, projectScope: 'foo', secretHash: 'h2' });
        const all = await db.getToken('tok-all');
        assert.ok(all);
        assert.deepEqual({ ...all, createdAt: '' }, {
          id: 'tok-all', userId: alice.id, username: 'alice', projectScope: null, secretHash: 'h1', createdAt: '',
        });
        assert.ok(!Number.isNaN(Date.parse(all.createdAt)));
        assert.equal((await db.getToken('tok-foo'))?.projectScope, 'foo');
        assert.equal(await db.getToken('nope'), undefined);
        assert.equal((await db.stats()).tokens, 2);
      }));

    it('the first upload creates the project, the owner role and three changes', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        const input = upload(alice, 'Sample_Project', '1.0', 'sample_project-1.0-py3-none-any.whl');
        const result = await db.addFile(input);
        assert.equal(result.serial, 3);
        assert.equal(result.createdProject, true);
        assert.equal(result.createdRelease, true);
        assert.equal(result.project.name, 'Sample_Project');
        assert.equal(result.project.normalizedName, 'sample-project');
        assert.equal(result.project.lastSerial, 3);
        assert.equal(result.project.status, 'active');
        assert.deepEqual(await db.getProject('sample-project'), result.project);
        assert.equal(await db.getRole(alice.id, 'sample-project'), 'Owner');
        assert.equal(await db.getRole(alice.id, 'other'), null);

        const changes = await db.changesSince(0, 100);
        assert.deepEqual(
          changes.map((c) => [c.serial, c.action, c.name, c.normalizedName, c.version, c.filename, c.submittedBy]),
          [
            [1, 'create', 'Sample_Project', 'sample-project', null, null, 'alice'],
            [2, 'new release', 'Sample_Project', 'sample-project', '1.0', null, 'alice'],
            [3, 'add file', 'Sample_Project', 'sample-project', '1.0', 'sample_project-1.0-py3-none-any.whl', 'alice'],
          ],
        );
        assert.equal(await db.lastSerial(), 3);
        assert.deepEqual(await db.listProjects(), [{ name: 'Sample_Project', normalizedName: 'sample-project', lastSerial: 3 }]);
        assert.equal(await db.isFilenameUsed('sample_project-1.0-py3-none-any.whl'), true);
        assert.equal(await db.isFilenameUsed('sample_project-2.0-py3-none-any.whl'), false);
        assert.equal(await db.isPathReferenced(input.file.path), true);
        assert.equal(await db.isPathReferenced('packages/00/00/nothing.whl'), false);

        const state = await db.getProjectState('sample-project');
        assert.ok(state);
        assert.equal(state.releases.length, 1);
        const [release] = state.releases;
        assert.equal(release?.version, '1.0');
        assert.equal(release?.yanked, false);
        assert.deepEqual(release?.metadata, input.metadata);
        assert.equal(state.files.length, 1);
        const [file] = state.files;
        assert.ok(file);
        assert.deepEqual(
          {
            filename: file.filename, packagetype: file.packagetype, pythonVersion: file.pythonVersion,
            requiresPython: file.requiresPython, size: file.size, md5: file.md5, sha256: file.sha256,
            blake2b256: file.blake2b256, path: file.path, metadataSha256: file.metadataSha256,
          },
          input.file,
        );
        assert.equal(file.releaseId, release?.id);
        assert.equal(file.version, '1.0');
        assert.equal(file.yanked, false);
        assert.equal(file.uploadedBy, 'alice');
        assert.equal(await db.getProjectState('nothing-here'), undefined);
        assert.deepEqual(await db.stats(), { projects: 1, releases: 1, files: 1, changes: 3, users: 1, tokens: 0, lastSerial: 3 });
      }));

    it('a second file of the same release takes one serial', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        await db.addFile(upload(alice, 'foo', '1.0rc1', 'foo-1.0rc1.tar.gz'));
        // Another spelling of the same version: the release is keyed by its canonical form.
        const second = await db.addFile(upload(alice, 'Foo', '1.0-RC1', 'foo-1.0rc1-py3-none-any.whl'));
        assert.equal(second.serial, 4);
        assert.equal(second.createdProject, false);
        assert.equal(second.createdRelease, false);
        assert.equal(second.project.lastSerial, 4);
        assert.equal(second.project.name, 'foo', 'the display name stays as first uploaded');
        const changes = await db.changesSince(3, 100);
        assert.deepEqual(changes.map((c) => [c.serial, c.action, c.version, c.filename]), [[4, 'add file', '1.0-RC1', 'foo-1.0rc1-py3-none-any.whl']]);
        assert.equal((await db.getProject('foo'))?.lastSerial, 4);
        const state = await db.getProjectState('foo');
        assert.equal(state?.releases.length, 1);
        assert.deepEqual(state?.files.map((f) => [f.filename, f.version]), [
          ['foo-1.0rc1-py3-none-any.whl', '1.0rc1'],
          ['foo-1.0rc1.tar.gz', '1.0rc1'],
        ]);
      }));

    it('PEP 658 metadata is kept with the file and goes with it', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        const wheel = upload(alice, 'meta', '1.0', 'meta-1.0-py3-none-any.whl');
        const sdist = upload(alice, 'meta', '1.0', 'meta-1.0.tar.gz');
        await db.addFile(wheel);
        await db.addFile(sdist);
        assert.equal(await db.getCoreMetadata(wheel.file.path), 'metadata:meta-1.0-py3-none-any.whl');
        assert.equal(await db.getCoreMetadata(sdist.file.path), undefined);
        await db.removeFile('meta', 'meta-1.0-py3-none-any.whl', null);
        assert.equal(await db.getCoreMetadata(wheel.file.path), undefined);
      }));

    it('getProjectStates reads many projects as getProjectState does, with their PEP 658 metadata when asked', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        await db.addFile(upload(alice, 'meta', '1.0', 'meta-1.0-py3-none-any.whl'));
        await db.addFile(upload(alice, 'meta', '1.0', 'meta-1.0.tar.gz'));
        await db.addFile(upload(alice, 'meta', '0.9', 'meta-0.9.tar.gz'));
        await db.addFile(upload(alice, 'plain', '2.0', 'plain-2.0.tar.gz'));
        const names = ['plain', 'nothing-here', 'meta'];
        const read = await db.getProjectStates(names, { coreMetadata: true });
        assert.equal(read.length, 3);
        assert.equal(read[1], undefined);
        assert.deepEqual(read[0]?.state, await db.getProjectState('plain'));
        assert.deepEqual(read[2]?.state, await db.getProjectState('meta'));
        assert.deepEqual(read[0]?.coreMetadata, new Map());
        const wheel = read[2]!.state.files.find((f) => f.filename === 'meta-1.0-py3-none-any.whl')!;
        assert.deepEqual(read[2]?.coreMetadata, new Map([[wheel.path, 'metadata:meta-1.0-py3-none-any.whl']]));
        const without = await db.getProjectStates(names);
        assert.deepEqual(without[2]?.state, read[2]?.state);
        assert.deepEqual(without[2]?.coreMetadata, new Map(), 'no metadata unless asked');
        assert.deepEqual(await db.getProjectStates([]), []);
      }));

    it('a user without a role on the project gets FORBIDDEN and nothing changes', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        const bob = await db.ensureUser('bob');
        await db.addFile(upload(alice, 'foo', '1.0', 'foo-1.0.tar.gz'));
        const before = await db.stats();
        await rejectsWith(
          db.addFile(upload(bob, 'foo', '2.0', 'foo-2.0.tar.gz')),
          'PYEDGE_FORBIDDEN',
          /The user 'bob' isn't allowed to upload to project 'foo'/,
        );
        assert.deepEqual(await db.stats(), before);
        assert.equal(await db.isFilenameUsed('foo-2.0.tar.gz'), false);
        assert.equal(await db.getRole(bob.id, 'foo'), null);
      }));

    it('a token scoped to another project gets FORBIDDEN', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        await db.addFile(upload(alice, 'foo', '1.0', 'foo-1.0.tar.gz'));
        await db.addFile(upload(alice, 'bar', '1.0', 'bar-1.0.tar.gz'));
        const before = await db.stats();
        await rejectsWith(
          db.addFile(upload(alice, 'bar', '2.0', 'bar-2.0.tar.gz', 'foo')),
          'PYEDGE_FORBIDDEN',
          /scoped to project 'foo' and cannot upload to 'bar'/,
        );
        await rejectsWith(db.addFile(upload(alice, 'baz', '1.0', 'baz-1.0.tar.gz', 'foo')), 'PYEDGE_FORBIDDEN', /scoped to project 'foo'/);
        assert.deepEqual(await db.stats(), before);
        assert.equal(await db.getProject('baz'), undefined);
        const ok = await db.addFile(upload(alice, 'Bar', '2.0', 'bar-2.0.tar.gz', 'bar'));
        assert.equal(ok.serial, before.lastSerial + 2);
      }));

    it('a name that normalizes onto another owner’s project gets FORBIDDEN', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        const bob = await db.ensureUser('bob');
        await db.addFile(upload(alice, 'foo-bar', '1.0', 'foo_bar-1.0.tar.gz'));
        const before = await db.stats();
        await rejectsWith(db.addFile(upload(bob, 'Foo_Bar', '9.0', 'foo_bar-9.0.tar.gz')), 'PYEDGE_FORBIDDEN', /isn't allowed/);
        assert.deepEqual(await db.stats(), before);
        assert.equal((await db.getProject('foo-bar'))?.name, 'foo-bar');
      }));

    it('a filename already uploaded gets FILE_EXISTS, even in another project', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        await db.addFile(upload(alice, 'foo', '1.0', 'foo-1.0.tar.gz'));
        const before = await db.stats();
        await rejectsWith(db.addFile(upload(alice, 'foo', '1.0', 'foo-1.0.tar.gz')), 'PYEDGE_FILE_EXISTS', /File already exists \('foo-1\.0\.tar\.gz'\)/);
        await rejectsWith(db.addFile(upload(alice, 'other', '1.0', 'foo-1.0.tar.gz')), 'PYEDGE_FILE_EXISTS');
        assert.deepEqual(await db.stats(), before);
        assert.equal(await db.getProject('other'), undefined);
      }));

    it('a second sdist for a release gets SDIST_EXISTS', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        await db.addFile(upload(alice, 'foo', '1.0', 'foo-1.0.tar.gz'));
        await rejectsWith(db.addFile(upload(alice, 'foo', '1.0', 'foo-1.0.zip')), 'PYEDGE_SDIST_EXISTS', /Only one sdist/);
        await db.addFile(upload(alice, 'foo', '2.0rc1', 'foo-2.0rc1.tar.gz'));
        const before = await db.stats();
        await rejectsWith(db.addFile(upload(alice, 'foo', '2.0-RC1', 'foo-2.0_RC1.zip')), 'PYEDGE_SDIST_EXISTS');
        assert.deepEqual(await db.stats(), before);
        assert.equal(await db.isFilenameUsed('foo-1.0.zip'), false);
        // A wheel for the release and an sdist for another release are fine.
        await db.addFile(upload(alice, 'foo', '1.0', 'foo-1.0-py3-none-any.whl'));
        await db.addFile(upload(alice, 'foo', '1.1', 'foo-1.1.zip'));
      }));

    it('getProjectState orders releases by PEP 440 and files by filename; listProjects by normalized name', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        for (const v of ['1.9', '1.10', '1.0rc1', '1.0', '1.0.post1', '1.0a1']) {
          await db.addFile(upload(alice, 'pkg', v, `pkg-${v}.tar.gz`));
        }
        await db.addFile(upload(alice, 'pkg', '1.9', 'pkg-1.9-py3-none-any.whl'));
        const state = await db.getProjectState('pkg');
        assert.ok(state);
        assert.deepEqual(state.releases.map((r) => r.version), ['1.0a1', '1.0rc1', '1.0', '1.0.post1', '1.9', '1.10']);
        const names = state.files.map((f) => f.filename);
        assert.deepEqual(names, [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
        assert.equal(names.length, 7);
        assert.equal(state.project.lastSerial, await db.lastSerial());

        for (const name of ['zeta', 'Alpha.Beta', 'alphabet', 'a-z']) {
          await db.addFile(upload(alice, name, '1.0', `${name.toLowerCase().replace('.', '_')}-1.0.tar.gz`));
        }
        assert.deepEqual((await db.listProjects()).map((p) => p.normalizedName), ['a-z', 'alpha-beta', 'alphabet', 'pkg', 'zeta']);
        assert.equal((await db.listProjects()).find((p) => p.normalizedName === 'alpha-beta')?.name, 'Alpha.Beta');
      }));

    it('changesSince pages through the changelog in serial order', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        await db.addFile(upload(alice, 'a', '1.0', 'a-1.0.tar.gz'));
        await db.addFile(upload(alice, 'a', '1.0', 'a-1.0-py3-none-any.whl'));
        await db.addFile(upload(alice, 'b', '1.0', 'b-1.0.tar.gz'));
        await db.addFile(upload(alice, 'a', '2.0', 'a-2.0.tar.gz'));
        const last = await db.lastSerial();
        assert.equal(last, 3 + 1 + 3 + 2);
        const seen: number[] = [];
        for (let since = 0; ; ) {
          const page = await db.changesSince(since, 2);
          if (page.length === 0) break;
          assert.ok(page.length <= 2);
          seen.push(...page.map((c) => c.serial));
          since = page[page.length - 1]!.serial;
        }
        assert.deepEqual(seen, Array.from({ length: last }, (_, i) => i + 1));
        assert.deepEqual(await db.changesSince(last, 10), []);
        assert.deepEqual((await db.changesSince(5, 1)).map((c) => c.serial), [6]);
        assert.deepEqual(await db.changesSince(0, 0), []);
      }));

    it('concurrent uploads all land or fail cleanly, with serials 1..N and no gaps', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        const distinct: AddFileInput[] = [];
        for (let i = 0; i < 8; i++) distinct.push(upload(alice, `solo-${i}`, '1.0', `solo_${i}-1.0.tar.gz`));
        // Eight files of one project and release that none of them has created yet.
        for (let i = 0; i < 8; i++) distinct.push(upload(alice, 'shared', '1.0', `shared-1.0-py3-none-manylinux_${i}.whl`));
        const racers = Array.from({ length: 4 }, () => upload(alice, 'racer', '1.0', 'racer-1.0.tar.gz'));

        const outcomes = await Promise.allSettled([...distinct, ...racers].map((input) => db.addFile(input)));
        const distinctOutcomes = outcomes.slice(0, distinct.length);
        for (const o of distinctOutcomes) assert.equal(o.status, 'fulfilled', o.status === 'rejected' ? String(o.reason) : '');
        const raced = outcomes.slice(distinct.length);
        assert.equal(raced.filter((o) => o.status === 'fulfilled').length, 1, 'exactly one racer wins');
        for (const o of raced) {
          if (o.status === 'rejected') {
            assert.ok(isPyedgeError(o.reason), String(o.reason));
            assert.equal(o.reason.code, 'PYEDGE_FILE_EXISTS');
          }
        }

        const last = await db.lastSerial();
        const changes = await db.changesSince(0, 1000);
        // 10 projects (create + new release each) and 17 files.
        assert.equal(changes.length, 10 * 2 + 17);
        assert.deepEqual(changes.map((c) => c.serial), Array.from({ length: last }, (_, i) => i + 1));
        const serials = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.serial] : []));
        assert.equal(new Set(serials).size, serials.length, 'each upload has its own serial');
        assert.equal(Math.max(...serials), last);
        // Each project's last_serial is the newest serial that touched it.
        for (const p of await db.listProjects()) {
          const newest = Math.max(...changes.filter((c) => c.normalizedName === p.normalizedName).map((c) => c.serial));
          assert.equal(p.lastSerial, newest, p.normalizedName);
        }
        const shared = await db.getProjectState('shared');
        assert.equal(shared?.releases.length, 1);
        assert.equal(shared?.files.length, 8);
        assert.equal(changes.filter((c) => c.normalizedName === 'shared' && c.action === 'create').length, 1);
        const stats = await db.stats();
        assert.deepEqual([stats.projects, stats.releases, stats.files, stats.changes], [10, 10, 17, last]);
      }));

    it('concurrent sdists for one release: one lands, the other gets SDIST_EXISTS', () =>
      withDb(async (db) => {
        const alice = await db.ensureUser('alice');
        await db.addFile(upload(alice, 'foo', '1.0', 'foo-1.0-py3-none-any.whl'));
        const outcomes = await Promise.allSettled([
          db.addFile(upload(alice, 'foo', '1.0', 'foo-1.0.tar.gz')),
          db.addFile(upload(alice, 'foo', '1.0', 'foo-1.0.zip')),
        ]);
        assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
        const failed = outcomes.find((o) => o.status === 'rejected');
        assert.ok(failed && isPyedgeError(failed.reason), String(failed?.reason));
        assert.equal(failed.reason.code, 'PYEDGE_SDIST_EXISTS');
        assert.deepEqual((await db.changesSince(0, 100)).map((c) => c.serial), [1, 2, 3, 4]);
      }));
  });
  runManagementContract(label, make);
}
