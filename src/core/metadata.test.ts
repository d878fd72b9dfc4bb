import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PyedgeError } from './errors.js';
import { parseCoreMetadata, toReleaseMetadata, validateCoreMetadata, type CoreMetadata } from './metadata.js';

// distutils (Python 2 era) PKG-INFO: 8-space folded Description, UNKNOWN placeholders.
const V1_0 = `Metadata-Version: 1.0
Name: simplejson
Version: 2.0.9
Summary: Simple, fast, extensible JSON encoder/decoder for Python
Home-page: http://undefined.org/python/#simplejson
Author: Bob Ippolito
Author-email: bob@redivi.com
License: MIT License
Download-URL: UNKNOWN
Description: simplejson is a simple, fast, complete, correct and extensible
        JSON <http://json.org> encoder and decoder for Python 2.4+.
        
            It is pure Python code with no dependencies.
        
        simplejson was formerly known as simple_json.
Platform: any
Platform: UNKNOWN
Classifier: Intended Audience :: Developers
Classifier: License :: OSI Approved :: MIT License
Classifier: Programming Language :: Python
`;

// setuptools wheel METADATA: description in the body, multi-use fields.
const V2_1 = `Metadata-Version: 2.1
Name: requests
Version: 2.31.0
Summary: Python HTTP for Humans.
Home-page: https://requests.readthedocs.io
Author: Kenneth Reitz
Author-email: me@kennethreitz.org
License: Apache 2.0
Project-URL: Documentation, https://requests.readthedocs.io
Project-URL: Source, https://github.com/psf/requests
Platform: UNKNOWN
Classifier: Development Status :: 5 - Production/Stable
Classifier: License :: OSI Approved :: Apache Software License
Requires-Python: >=3.7
Description-Content-Type: text/markdown
License-File: LICENSE
Requires-Dist: charset-normalizer (<4,>=2)
Requires-Dist: idna (<4,>=2.5)
Requires-Dist: PySocks (!=1.5.7,>=1.5.6) ; extra == 'socks'
Provides-Extra: security
Provides-Extra: socks

# Requests

**Requests** is a simple, yet elegant, HTTP library.

\`\`\`python
>>> import requests
\`\`\`
`;

// hatchling 1.27 METADATA: PEP 639 license fields.
const V2_4 = `Metadata-Version: 2.4
Name: attrs
Version: 25.3.0
Summary: Classes Without Boilerplate
Project-URL: Documentation, https://www.attrs.org/
Project-URL: Changelog, https://www.attrs.org/en/stable/changelog.html
Author-email: Hynek Schlawack <hs@ox.cx>
License-Expression: MIT
License-File: LICENSE
License-File: licenses/AUTHORS.txt
Keywords: attribute,boilerplate,class
Classifier: Programming Language :: Python :: 3.13
Classifier: Typing :: Typed
Requires-Python: >=3.8
Provides-Extra: tests
Requires-Dist: pytest>=4.3.0; extra == 'tests'
Requires-Dist: hypothesis; extra == 'tests'
Description-Content-Type: text/markdown

<p align="center">attrs</p>
`;

// PEP 794 import names.
const V2_5 = `Metadata-Version: 2.5
Name: my-project
Version: 1.0.0
Summary: Shows PEP 794 import names
Import-Name: my_project
Import-Name: my_project._vendor; private
Import-Namespace: acme
Dynamic: Requires-Dist
Dynamic: Classifier
Requires-External: libpq (>=9.4)
Provides-Dist: my-project-compat (1.0)
Obsoletes-Dist: old-project (<1.0)
Supported-Platform: RedHat 7.2

Body text.
`;

function withFields(overrides: Partial<CoreMetadata>): CoreMetadata {
  return { ...parseCoreMetadata(V2_1), ...overrides };
}

function assertInvalid(md: CoreMetadata, field: string, message: RegExp): void {
  assert.throws(
    () => validateCoreMetadata(md),
    (err: unknown) => {
      assert.ok(err instanceof PyedgeError);
      assert.equal(err.code, 'PYEDGE_INVALID_METADATA');
      assert.equal(err.context.field, field);
      assert.match(err.message, message);
      return true;
    },
  );
}

test('parses distutils 1.0 PKG-INFO with a folded Description', () => {
  const md = parseCoreMetadata(V1_0);
  validateCoreMetadata(md);
  assert.equal(md.metadataVersion, '1.0');
  assert.equal(md.name, 'simplejson');
  assert.equal(md.version, '2.0.9');
  assert.equal(md.homePage, 'http://undefined.org/python/#simplejson');
  assert.equal(md.authorEmail, 'bob@redivi.com');
  assert.equal(md.license, 'MIT License');
  assert.equal(md.downloadUrl, null, 'UNKNOWN means absent');
  assert.deepEqual(md.platforms, ['any']);
  assert.deepEqual(md.classifiers, [
    'Intended Audience :: Developers',
    'License :: OSI Approved :: MIT License',
    'Programming Language :: Python',
  ]);
  assert.equal(
    md.description,
    'simplejson is a simple, fast, complete, correct and extensible\n' +
      'JSON <http://json.org> encoder and decoder for Python 2.4+.\n' +
      '\n' +
      '    It is pure Python code with no dependencies.\n' +
      '\n' +
      'simplejson was formerly known as simple_json.',
  );
  assert.deepEqual(md.requiresDist, []);
  assert.equal(md.licenseExpression, null);
});

test('parses setuptools 2.1 METADATA with the description in the body', () => {
  const md = parseCoreMetadata(V2_1);
  validateCoreMetadata(md);
  assert.equal(md.metadataVersion, '2.1');
  assert.equal(md.name, 'requests');
  assert.equal(md.version, '2.31.0');
  assert.equal(md.summary, 'Python HTTP for Humans.');
  assert.equal(md.requiresPython, '>=3.7');
  assert.equal(md.descriptionContentType, 'text/markdown');
  assert.deepEqual(md.projectUrls, [
    'Documentation, https://requests.readthedocs.io',
    'Source, https://github.com/psf/requests',
  ]);
  assert.deepEqual(md.platforms, []);
  assert.deepEqual(md.licenseFiles, ['LICENSE']);
  assert.deepEqual(md.requiresDist, [
    'charset-normalizer (<4,>=2)',
    'idna (<4,>=2.5)',
    "PySocks (!=1.5.7,>=1.5.6) ; extra == 'socks'",
  ]);
  assert.deepEqual(md.providesExtra, ['security', 'socks']);
  assert.equal(
    md.description,
    '# Requests\n\n**Requests** is a simple, yet elegant, HTTP library.\n\n```python\n>>> import requests\n```\n',
  );
});

test('parses 2.4 METADATA with License-Expression and License-File', () => {
  const md = parseCoreMetadata(V2_4);
  validateCoreMetadata(md);
  assert.equal(md.licenseExpression, 'MIT');
  assert.equal(md.license, null);
  assert.deepEqual(md.licenseFiles, ['LICENSE', 'licenses/AUTHORS.txt']);
  assert.equal(md.authorEmail, 'Hynek Schlawack <hs@ox.cx>');
  assert.equal(md.author, null);
  assert.equal(md.keywords, 'attribute,boilerplate,class');
  assert.deepEqual(md.requiresDist, ["pytest>=4.3.0; extra == 'tests'", "hypothesis; extra == 'tests'"]);
  assert.equal(md.description, '<p align="center">attrs</p>\n');
});

test('parses 2.5 METADATA with Import-Name and the other multi-use fields', () => {
  const md = parseCoreMetadata(V2_5);
  validateCoreMetadata(md);
  assert.equal(md.metadataVersion, '2.5');
  assert.deepEqual(md.importNames, ['my_project', 'my_project._vendor; private']);
  assert.deepEqual(md.importNamespaces, ['acme']);
  assert.deepEqual(md.dynamic, ['Requires-Dist', 'Classifier']);
  assert.deepEqual(md.requiresExternal, ['libpq (>=9.4)']);
  assert.deepEqual(md.providesDist, ['my-project-compat (1.0)']);
  assert.deepEqual(md.obsoletesDist, ['old-project (<1.0)']);
  assert.deepEqual(md.supportedPlatforms, ['RedHat 7.2']);
  assert.equal(md.description, 'Body text.\n');
});

test('an empty Import-Name is kept: it declares that there are no import names', () => {
  const md = parseCoreMetadata('Metadata-Version: 2.5\nName: tool\nVersion: 1\nImport-Name:\n');
  assert.deepEqual(md.importNames, ['']);
});

test('unfolds a multi-line License folded with 8 spaces, keeping its lines', () => {
  const md = parseCoreMetadata(
    'Metadata-Version: 2.1\nName: x\nVersion: 1.0\n' +
      'License: Copyright (c) 2010 Jane Doe\n' +
      '        \n' +
      '        Permission is hereby granted, free of charge,\n' +
      '          to any person obtaining a copy.\n' +
      'Classifier: Topic :: Utilities\n',
  );
  assert.equal(
    md.license,
    'Copyright (c) 2010 Jane Doe\n\nPermission is hereby granted, free of charge,\n  to any person obtaining a copy.',
  );
  assert.deepEqual(md.classifiers, ['Topic :: Utilities']);
});

test('unfolds a License whose text starts on the next line', () => {
  const md = parseCoreMetadata('Metadata-Version: 2.1\nName: x\nVersion: 1.0\nLicense:\n\tBSD 3-Clause\n\tsee LICENSE\n');
  assert.equal(md.license, 'BSD 3-Clause\nsee LICENSE');
});

test("undoes the spec's 7 spaces and '|' convention in a Description header", () => {
  const md = parseCoreMetadata(
    'Metadata-Version: 1.2\nName: x\nVersion: 1.0\n' +
      'Description: This project provides powerful math functions\n' +
      '       |For example, you can use `sum()` to sum numbers:\n' +
      '       |\n' +
      '       |Example::\n' +
      '       |\n' +
      '       |    >>> sum(1, 2)\n' +
      '       |    3\n' +
      '       |\n' +
      'Requires-Python: >=2.7\n',
  );
  assert.equal(
    md.description,
    'This project provides powerful math functions\nFor example, you can use `sum()` to sum numbers:\n\nExample::\n\n    >>> sum(1, 2)\n    3',
  );
  assert.equal(md.requiresPython, '>=2.7');
});

test('folded structured fields become one line', () => {
  const md = parseCoreMetadata(
    'Metadata-Version: 2.1\nName: x\nVersion: 1.0\nRequires-Dist: foo>=1.0;\n    python_version < "3.8"\nKeywords: a b\n  c\n',
  );
  assert.deepEqual(md.requiresDist, ['foo>=1.0; python_version < "3.8"']);
  assert.equal(md.keywords, 'a b c');
});

test('header names are case-insensitive and CRLF line endings work', () => {
  const md = parseCoreMetadata(
    'METADATA-VERSION: 2.2\r\nname: Foo.Bar\r\nversion: 0.1\r\nrequires-dist: baz\r\nHOME-PAGE: https://x\r\n\r\nbody\r\n',
  );
  validateCoreMetadata(md);
  assert.equal(md.metadataVersion, '2.2');
  assert.equal(md.name, 'Foo.Bar');
  assert.equal(md.version, '0.1');
  assert.deepEqual(md.requiresDist, ['baz']);
  assert.equal(md.homePage, 'https://x');
  assert.equal(md.description, 'body\n');
});

test('unknown headers are ignored and the first of a repeated single-use field wins', () => {
  const md = parseCoreMetadata('Metadata-Version: 2.1\nName: first\nName: second\nX-Custom: yes\nVersion: 1\nWheel-Version: 1.0\n');
  assert.equal(md.name, 'first');
  assert.equal(Object.hasOwn(md, 'xCustom'), false);
  assert.equal(Object.hasOwn(md, 'wheelVersion'), false);
});

test('a UTF-8 BOM is ignored', () => {
  const md = parseCoreMetadata('\uFEFFMetadata-Version: 2.1\nName: x\nVersion: 1\n');
  assert.equal(md.metadataVersion, '2.1');
});

test('in 2.1 and later the body wins over a Description header; before 2.1 the header wins', () => {
  const v21 = parseCoreMetadata('Metadata-Version: 2.1\nName: x\nVersion: 1\nDescription: header\n\nbody\n');
  assert.equal(v21.description, 'body\n');
  const v12 = parseCoreMetadata('Metadata-Version: 1.2\nName: x\nVersion: 1\nDescription: header\n\nbody\n');
  assert.equal(v12.description, 'header');
  const v12NoHeader = parseCoreMetadata('Metadata-Version: 1.2\nName: x\nVersion: 1\n\nbody\n');
  assert.equal(v12NoHeader.description, 'body\n');
  const blankBody = parseCoreMetadata('Metadata-Version: 2.1\nName: x\nVersion: 1\nDescription: header\n\n\n  \n');
  assert.equal(blankBody.description, 'header');
});

test('a line that is not a header starts the body, as in Python’s email parser', () => {
  const md = parseCoreMetadata('Metadata-Version: 2.1\nName: x\nVersion: 1\nthis is not a header\nSummary: late\n');
  assert.equal(md.summary, null);
  assert.equal(md.description, 'this is not a header\nSummary: late\n');
});

test('rejects a missing Metadata-Version', () => {
  assertInvalid(withFields({ metadataVersion: null }), 'Metadata-Version', /'Metadata-Version' is missing/);
  assertInvalid(parseCoreMetadata('Name: x\nVersion: 1\n'), 'Metadata-Version', /missing/);
});

test('rejects an unknown Metadata-Version', () => {
  assertInvalid(withFields({ metadataVersion: '3.0' }), 'Metadata-Version', /'3\.0'.*2\.5/);
  assertInvalid(withFields({ metadataVersion: '2.10' }), 'Metadata-Version', /supported versions/);
});

test('rejects a missing or invalid Name', () => {
  assertInvalid(withFields({ name: null }), 'Name', /'Name' is missing/);
  assertInvalid(withFields({ name: '-bad-' }), 'Name', /not a valid project name/);
  assertInvalid(withFields({ name: 'has space' }), 'Name', /not a valid project name/);
});

test('rejects a missing or invalid Version', () => {
  assertInvalid(withFields({ version: null }), 'Version', /'Version' is missing/);
  assertInvalid(withFields({ version: '1.0 beta' }), 'Version', /not a valid PEP 440 version/);
  assertInvalid(parseCoreMetadata('Metadata-Version: 2.1\nName: x\nVersion: banana\n'), 'Version', /banana/);
});

test('rejects a multi-line or overlong Summary', () => {
  const folded = parseCoreMetadata('Metadata-Version: 2.1\nName: x\nVersion: 1\nSummary: one\n        two\n');
  assert.equal(folded.summary, 'one\ntwo');
  assertInvalid(folded, 'Summary', /single line/);
  assertInvalid(withFields({ summary: 'a'.repeat(513) }), 'Summary', /513 characters/);
  validateCoreMetadata(withFields({ summary: 'a'.repeat(512) }));
});

test('2.4: License and License-Expression together are allowed', () => {
  validateCoreMetadata(withFields({ metadataVersion: '2.4', license: 'MIT', licenseExpression: 'MIT' }));
});

test('2.4 and later: License-File entries must be safe relative paths', () => {
  for (const bad of ['/etc/passwd', '../LICENSE', 'licenses/../../x', 'C:/LICENSE', 'licenses\\LICENSE']) {
    assertInvalid(withFields({ metadataVersion: '2.4', licenseFiles: ['LICENSE', bad] }), 'License-File', /relative path/);
    assertInvalid(withFields({ metadataVersion: '2.5', licenseFiles: [bad] }), 'License-File', /PEP 639/);
  }
  // Before 2.4, License-File was a setuptools extension and is not checked.
  validateCoreMetadata(withFields({ metadataVersion: '2.1', licenseFiles: ['../LICENSE'] }));
  validateCoreMetadata(withFields({ metadataVersion: '2.4', licenseFiles: ['LICENSE', 'licenses/..x/a.txt'] }));
});

test('toReleaseMetadata keeps the fields a release stores', () => {
  const rm = toReleaseMetadata(parseCoreMetadata(V2_4));
  assert.equal(rm.metadataVersion, '2.4');
  assert.equal(rm.summary, 'Classes Without Boilerplate');
  assert.equal(rm.licenseExpression, 'MIT');
  assert.deepEqual(rm.licenseFiles, ['LICENSE', 'licenses/AUTHORS.txt']);
  assert.equal(rm.requiresPython, '>=3.8');
  assert.deepEqual(rm.providesExtra, ['tests']);
  assert.equal(rm.descriptionContentType, 'text/markdown');
  assert.deepEqual(rm.projectUrls, [
    'Documentation, https://www.attrs.org/',
    'Changelog, https://www.attrs.org/en/stable/changelog.html',
  ]);
  assert.equal(rm.homePage, null);
  assert.equal(Object.hasOwn(rm, 'name'), false);
  assert.throws(() => toReleaseMetadata(withFields({ metadataVersion: null })), { code: 'PYEDGE_INVALID_METADATA' });
});
