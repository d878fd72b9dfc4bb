import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PyedgeError } from '../../core/errors.js';
import { parseFilename } from '../../core/filenames.js';
import { DEFAULT_DIST_METADATA_LIMITS, readDistMetadata } from './dist-metadata.js';

/** Members are [name, content]; a name ending in '/' is a directory. Content travels as base64. */
interface Fixture {
  readonly file: string;
  readonly format: 'zip' | 'tar.gz';
  readonly members: readonly (readonly [string, string | Buffer])[];
}

// Builds the archives with Python's own zipfile and tarfile, as real build tools do.
const BUILD = `
import base64, io, json, sys, tarfile, zipfile
for f in json.loads(sys.argv[1]):
    members = [(n, base64.b64decode(d)) for n, d in f['members']]
    if f['format'] == 'zip':
        with zipfile.ZipFile(f['path'], 'w', zipfile.ZIP_DEFLATED) as z:
            for name, data in members:
                z.writestr(name, data)
    else:
        with tarfile.open(f['path'], 'w:gz', format=tarfile.PAX_FORMAT) as t:
            for name, data in members:
                info = tarfile.TarInfo(name.rstrip('/'))
                if name.endswith('/'):
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    t.addfile(info)
                else:
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))
`;

const METADATA_21 = `Metadata-Version: 2.1
Name: demo-pkg
Version: 1.0
Summary: A demo package
Author-email: Jane <jane@example.org>
Requires-Python: >=3.8
Requires-Dist: requests>=2
Description-Content-Type: text/markdown

# demo-pkg

Long description.
`;

const METADATA_24 = `Metadata-Version: 2.4
Name: zope.interface
Version: 6.0
Summary: Interfaces for Python
License-Expression: ZPL-2.1
License-File: LICENSE.txt
Classifier: Framework :: Zope :: 3
Requires-Python: >=3.7
`;

const PKG_INFO = `Metadata-Version: 2.2
Name: demo-pkg
Version: 1.0
Summary: A demo package
Dynamic: Requires-Dist
`;

const WHEEL = 'Wheel-Version: 1.0\nGenerator: bdist_wheel (0.42.0)\nRoot-Is-Purelib: true\nTag: py3-none-any\n';

function wheel(file: string, distInfo: readonly string[], metadata: string | Buffer = METADATA_21): Fixture {
  const members: [string, string | Buffer][] = [['demo_pkg/__init__.py', '__version__ = "1.0"\n']];
  for (const dir of distInfo) {
    members.push([`${dir}/METADATA`, metadata], [`${dir}/WHEEL`, WHEEL], [`${dir}/RECORD`, '']);
  }
  return { file, format: 'zip', members };
}

const FIXTURES: readonly Fixture[] = [
  wheel('demo_pkg-1.0-py3-none-any.whl', ['demo_pkg-1.0.dist-info']),
  // Old setuptools kept dots in the folder name; the filename escapes them.
  wheel('zope_interface-6.0-cp311-cp311-linux_x86_64.whl', ['zope.interface-6.0.dist-info'], METADATA_24),
  {
    file: 'nometa-1.0-py3-none-any.whl',
    format: 'zip',
    members: [
      ['nometa/__init__.py', ''],
      ['nometa-1.0.dist-info/WHEEL', WHEEL],
      ['nometa-1.0.dist-info/RECORD', ''],
    ],
  },
  { ...wheel('other_name-1.0-py3-none-any.whl', ['demo_pkg-1.0.dist-info']) },
  { ...wheel('demo_pkg-2.0-py3-none-any.whl', ['demo_pkg-1.0.dist-info']) },
  wheel('twodirs-1.0-py3-none-any.whl', ['twodirs-1.0.dist-info', 'vendored-2.0.dist-info']),
  {
    file: 'nested-1.0-py3-none-any.whl',
    format: 'zip',
    members: [['lib/nested-1.0.dist-info/METADATA', METADATA_21]],
  },
  wheel('demo_pkg-1.0-py3-none-win_amd64.whl', ['demo_pkg-1.0.dist-info'], Buffer.from([0x4d, 0x65, 0xff, 0xfe, 0x0a])),
  wheel('demo_pkg-1.0-py3-none-macosx_11_0_arm64.whl', ['demo_pkg-1.0.dist-info'], METADATA_21.replace('Version: 1.0', 'Version: one')),
  wheel('demo_pkg-1.0-py3-none-manylinux1_x86_64.whl', ['demo_pkg-1.0.dist-info']),
  {
    file: 'demo_pkg-1.0.tar.gz',
    format: 'tar.gz',
    members: [
      ['demo_pkg-1.0/', ''],
      ['demo_pkg-1.0/PKG-INFO', PKG_INFO],
      ['demo_pkg-1.0/pyproject.toml', '[build-system]\nrequires = ["setuptools"]\n'],
      [`demo_pkg-1.0/src/demo_pkg/${'very_long_module_name_'.repeat(8)}.py`, 'x = 1\n'],
      ['demo_pkg-1.0/src/demo_pkg.egg-info/PKG-INFO', PKG_INFO.replace('demo-pkg', 'wrong')],
    ],
  },
  {
    file: 'dotslash-1.0.tar.gz',
    format: 'tar.gz',
    members: [['./dotslash-1.0/PKG-INFO', PKG_INFO]],
  },
  {
    file: 'nopkginfo-1.0.tar.gz',
    format: 'tar.gz',
    members: [
      ['nopkginfo-1.0/setup.py', 'from setuptools import setup\nsetup()\n'],
      ['PKG-INFO', PKG_INFO],
    ],
  },
  {
    file: 'deep-1.0.tar.gz',
    format: 'tar.gz',
    members: [
      ['deep-1.0/setup.py', ''],
      ['deep-1.0/src/deep.egg-info/PKG-INFO', PKG_INFO],
    ],
  },
  {
    file: 'demo-pkg-1.0.tar.gz',
    format: 'tar.gz',
    members: [
      ['vendor-9.9/PKG-INFO', PKG_INFO.replace('demo-pkg', 'vendor')],
      ['Demo.Pkg-1.0/PKG-INFO', PKG_INFO],
    ],
  },
  {
    file: 'twotops-1.0.tar.gz',
    format: 'tar.gz',
    members: [
      ['a-1.0/PKG-INFO', PKG_INFO],
      ['b-1.0/PKG-INFO', PKG_INFO],
    ],
  },
  {
    file: 'demo_pkg-1.0.zip',
    format: 'zip',
    members: [
      ['demo_pkg-1.0/setup.py', ''],
      ['demo_pkg-1.0/PKG-INFO', PKG_INFO],
    ],
  },
  {
    file: 'nopkginfo-1.0.zip',
    format: 'zip',
    members: [['nopkginfo-1.0/setup.py', '']],
  },
];

let dir = '';
const at = (file: string): string => join(dir, file);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pyedge-dist-metadata-'));
  const spec = FIXTURES.map((f) => ({
    path: at(f.file),
    format: f.format,
    members: f.members.map(([name, data]) => [name, Buffer.from(data).toString('base64')]),
  }));
  execFileSync('python3', ['-c', BUILD, JSON.stringify(spec)], { stdio: ['ignore', 'ignore', 'inherit'] });

  const good = await readFile(at('demo_pkg-1.0-py3-none-any.whl'));
  await writeFile(at('truncated-1.0-py3-none-any.whl'), good.subarray(0, Math.floor(good.length / 2)));
  await writeFile(at('notzip-1.0-py3-none-any.whl'), 'this is not a zip file\n'.repeat(20));
  const sdist = await readFile(at('demo_pkg-1.0.tar.gz'));
  await writeFile(at('truncgz-1.0.tar.gz'), sdist.subarray(0, Math.floor(sdist.length / 2)));
  await writeFile(at('garbage-1.0.tar.gz'), Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), Buffer.alloc(200, 0x41)]));
  await writeFile(at('notgzip-1.0.tar.gz'), 'plain text, not gzip\n');
  await writeFile(at('nottar-1.0.tar.gz'), gzipSync(Buffer.from('just some gzip-compressed text, not a tar archive\n'.repeat(30))));
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function read(file: string, limits = DEFAULT_DIST_METADATA_LIMITS) {
  return readDistMetadata(at(file), parseFilename(file), limits);
}

async function assertRejects(file: string, code: string, message: RegExp, limits = DEFAULT_DIST_METADATA_LIMITS): Promise<void> {
  await assert.rejects(read(file, limits), (err: unknown) => {
    assert.ok(err instanceof PyedgeError, `expected a PyedgeError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

test('reads METADATA 2.1 from a wheel, returning the bytes as stored', async () => {
  const { raw, metadata } = await read('demo_pkg-1.0-py3-none-any.whl');
  assert.equal(raw.toString('utf8'), METADATA_21);
  assert.equal(metadata.metadataVersion, '2.1');
  assert.equal(metadata.name, 'demo-pkg');
  assert.equal(metadata.version, '1.0');
  assert.deepEqual(metadata.requiresDist, ['requests>=2']);
  assert.equal(metadata.description, '# demo-pkg\n\nLong description.\n');
});

test('reads METADATA 2.4 from a wheel whose .dist-info folder keeps dots in the name', async () => {
  const { metadata } = await read('zope_interface-6.0-cp311-cp311-linux_x86_64.whl');
  assert.equal(metadata.name, 'zope.interface');
  assert.equal(metadata.licenseExpression, 'ZPL-2.1');
  assert.deepEqual(metadata.licenseFiles, ['LICENSE.txt']);
});

test('rejects a wheel without METADATA, naming the file it needs', async () => {
  await assertRejects(
    'nometa-1.0-py3-none-any.whl',
    'PYEDGE_INVALID_DISTRIBUTION',
    /^Wheel 'nometa-1\.0-py3-none-any\.whl' does not contain the required METADATA file: nometa-1\.0\.dist-info\/METADATA$/,
  );
});

test('rejects a wheel whose METADATA belongs to another name or version', async () => {
  await assertRejects('other_name-1.0-py3-none-any.whl', 'PYEDGE_INVALID_DISTRIBUTION', /required METADATA file: other_name-1\.0\.dist-info\/METADATA/);
  await assertRejects('demo_pkg-2.0-py3-none-any.whl', 'PYEDGE_INVALID_DISTRIBUTION', /required METADATA file: demo_pkg-2\.0\.dist-info\/METADATA/);
});

test('rejects a wheel with METADATA only below the top level', async () => {
  await assertRejects('nested-1.0-py3-none-any.whl', 'PYEDGE_INVALID_DISTRIBUTION', /required METADATA file/);
});

test('rejects a wheel with two .dist-info folders', async () => {
  await assertRejects(
    'twodirs-1.0-py3-none-any.whl',
    'PYEDGE_INVALID_DISTRIBUTION',
    /several \.dist-info directories \(twodirs-1\.0\.dist-info, vendored-2\.0\.dist-info\)/,
  );
});

test('rejects a truncated wheel and bytes that are not a zip', async () => {
  await assertRejects('truncated-1.0-py3-none-any.whl', 'PYEDGE_INVALID_DISTRIBUTION', /^Invalid distribution file: 'truncated-1\.0-py3-none-any\.whl' is not a valid zip archive/);
  await assertRejects('notzip-1.0-py3-none-any.whl', 'PYEDGE_INVALID_DISTRIBUTION', /'notzip-1\.0-py3-none-any\.whl' is not a valid zip archive/);
});

test('rejects METADATA that is not UTF-8', async () => {
  await assertRejects('demo_pkg-1.0-py3-none-win_amd64.whl', 'PYEDGE_INVALID_METADATA', /demo_pkg-1\.0\.dist-info\/METADATA .* is not valid UTF-8/);
});

test('rejects METADATA that fails validation', async () => {
  await assertRejects('demo_pkg-1.0-py3-none-macosx_11_0_arm64.whl', 'PYEDGE_INVALID_METADATA', /'Version' is 'one'/);
});

test('enforces the METADATA size and entry-count limits', async () => {
  await assertRejects('demo_pkg-1.0-py3-none-manylinux1_x86_64.whl', 'PYEDGE_INVALID_DISTRIBUTION', /METADATA .* is larger than 100 bytes/, {
    ...DEFAULT_DIST_METADATA_LIMITS,
    maxMetadataBytes: 100,
  });
  await assertRejects('demo_pkg-1.0-py3-none-manylinux1_x86_64.whl', 'PYEDGE_INVALID_DISTRIBUTION', /more than 3 entries/, {
    ...DEFAULT_DIST_METADATA_LIMITS,
    maxZipEntries: 3,
  });
  await assertRejects('demo_pkg-1.0.tar.gz', 'PYEDGE_INVALID_DISTRIBUTION', /demo_pkg-1\.0\/PKG-INFO .* is larger than 10 bytes/, {
    ...DEFAULT_DIST_METADATA_LIMITS,
    maxMetadataBytes: 10,
  });
});

test('reads the top-level PKG-INFO of a .tar.gz sdist, not the egg-info one', async () => {
  const { raw, metadata } = await read('demo_pkg-1.0.tar.gz');
  assert.equal(raw.toString('utf8'), PKG_INFO);
  assert.equal(metadata.name, 'demo-pkg');
  assert.equal(metadata.metadataVersion, '2.2');
  assert.deepEqual(metadata.dynamic, ['Requires-Dist']);
});

test('accepts tar member names that start with ./', async () => {
  const { metadata } = await read('dotslash-1.0.tar.gz');
  assert.equal(metadata.name, 'demo-pkg');
});

test('rejects an sdist without a top-level-folder PKG-INFO', async () => {
  await assertRejects('nopkginfo-1.0.tar.gz', 'PYEDGE_INVALID_DISTRIBUTION', /'nopkginfo-1\.0\.tar\.gz' does not contain a PKG-INFO file/);
  await assertRejects('deep-1.0.tar.gz', 'PYEDGE_INVALID_DISTRIBUTION', /does not contain a PKG-INFO file at deep-1\.0\/PKG-INFO/);
});

test('among several top-level folders, uses the {name}-{version} one or refuses to guess', async () => {
  const { metadata } = await read('demo-pkg-1.0.tar.gz');
  assert.equal(metadata.name, 'demo-pkg');
  await assertRejects('twotops-1.0.tar.gz', 'PYEDGE_INVALID_DISTRIBUTION', /several top-level PKG-INFO files \(a-1\.0, b-1\.0\)/);
});

test('rejects corrupt gzip and tar data', async () => {
  for (const file of ['truncgz-1.0.tar.gz', 'garbage-1.0.tar.gz', 'notgzip-1.0.tar.gz', 'nottar-1.0.tar.gz']) {
    await assertRejects(file, 'PYEDGE_INVALID_DISTRIBUTION', new RegExp(`'${file.replace(/\./g, '\\.')}' is not a valid gzip-compressed tar archive`));
  }
});

test('reads the PKG-INFO of a .zip sdist', async () => {
  const { raw, metadata } = await read('demo_pkg-1.0.zip');
  assert.equal(raw.toString('utf8'), PKG_INFO);
  assert.equal(metadata.version, '1.0');
  await assertRejects('nopkginfo-1.0.zip', 'PYEDGE_INVALID_DISTRIBUTION', /does not contain a PKG-INFO file/);
});

test('a missing local file is an I/O error, not the uploader’s fault', async () => {
  for (const file of ['missing-1.0-py3-none-any.whl', 'missing-1.0.tar.gz']) {
    await assert.rejects(read(file), (err: unknown) => {
      assert.ok(!(err instanceof PyedgeError));
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOENT');
      return true;
    });
  }
});

const SYSTEM_WHEELS = '/usr/share/python-wheels';

test('reads the wheels Debian ships for pip, setuptools and wheel', { skip: !existsSync(SYSTEM_WHEELS) }, async () => {
  const files = readdirSync(SYSTEM_WHEELS).filter((f) => /^(pip|setuptools|wheel)-.*\.whl$/.test(f));
  assert.ok(files.length > 0, `no pip/setuptools/wheel wheels in ${SYSTEM_WHEELS}`);
  for (const file of files) {
    const parsed = parseFilename(file);
    const { raw, metadata } = await readDistMetadata(join(SYSTEM_WHEELS, file), parsed);
    assert.equal(metadata.name, parsed.name, file);
    assert.equal(metadata.version, parsed.version, file);
    assert.ok(raw.length > 100, file);
  }
});

test('reading from the bytes in memory gives what reading the file gives, for every fixture', async () => {
  const outcome = async (source: string | Buffer, file: string, limits = DEFAULT_DIST_METADATA_LIMITS): Promise<string> => {
    try {
      const { raw, metadata } = await readDistMetadata(source, parseFilename(file), limits);
      return `ok ${raw.toString('base64')} ${metadata.name} ${metadata.version}`;
    } catch (err) {
      return err instanceof PyedgeError ? `${err.code} ${err.message}` : `other ${String(err)}`;
    }
  };
  const files = readdirSync(dir).filter((f) => f.endsWith('.whl') || f.endsWith('.tar.gz') || f.endsWith('.zip'));
  assert.ok(files.length >= 15, `fixtures: ${files.join(', ')}`);
  let accepted = 0;
  for (const file of files) {
    const fromFile = await outcome(at(file), file);
    assert.equal(await outcome(await readFile(at(file)), file), fromFile, file);
    if (fromFile.startsWith('ok ')) accepted++;
  }
  assert.ok(accepted >= 3 && accepted < files.length, 'both readable and refused files were compared');
  const tight = { maxMetadataBytes: 10, maxZipEntries: 2 };
  for (const file of ['demo_pkg-1.0-py3-none-any.whl', 'demo_pkg-1.0.tar.gz']) {
    assert.equal(await outcome(await readFile(at(file)), file, tight), await outcome(at(file), file, tight));
    assert.match(await outcome(await readFile(at(file)), file, tight), /^PYEDGE_INVALID_DISTRIBUTION /);
  }
});
