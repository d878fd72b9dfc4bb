/** Real Python clients for tests: pip in fresh venvs, twine, and packages built offline. */
import { mkdtemp, mkdir, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from './processes.js';

/** Debian's Python, which carries setuptools, wheel and twine. */
export const SYSTEM_PYTHON = '/usr/bin/python3';
export const DEBIAN_WHEELS = '/usr/share/python-wheels';

/**
 * An environment for pip that cannot see any configuration of this machine: no
 * PIP_* variables, no config file, no cache, no user site.
 */
export function isolatedEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PIP_') && !k.startsWith('PYTHON') && !k.startsWith('TWINE_') && k !== 'VIRTUAL_ENV') env[k] = v;
  }
  return {
    ...env,
    PIP_CONFIG_FILE: '/dev/null',
    PIP_NO_CACHE_DIR: '1',
    PIP_DISABLE_PIP_VERSION_CHECK: '1',
    PYTHONNOUSERSITE: '1',
    ...extra,
  };
}

export interface Venv {
  readonly dir: string;
  readonly python: string;
  /** Run `python -m pip ARGS` in the venv, isolated from machine configuration. */
  pip(args: readonly string[]): Promise<RunResult>;
}

/** A fresh virtual environment (with pip from Debian's wheels, no network). */
export async function makeVenv(parent?: string): Promise<Venv> {
  const dir = await mkdtemp(join(parent ?? tmpdir(), 'venv-'));
  const r = await run(SYSTEM_PYTHON, ['-m', 'venv', dir], { env: isolatedEnv() });
  if (r.code !== 0) throw new Error(`python3 -m venv failed: ${r.stderr}`);
  const python = join(dir, 'bin', 'python');
  return {
    dir,
    python,
    pip: (args) => run(python, ['-m', 'pip', '--no-cache-dir', '--disable-pip-version-check', ...args], { env: isolatedEnv() }),
  };
}

/** `twine upload` to an index with a token. */
export function twineUpload(repositoryUrl: string, token: string, files: readonly string[]): Promise<RunResult> {
  return run(
    SYSTEM_PYTHON,
    ['-m', 'twine', 'upload', '--non-interactive', '--disable-progress-bar', '--repository-url', repositoryUrl, '-u', '__token__', '-p', token, ...files],
    { env: isolatedEnv() },
  );
}

export interface SampleProject {
  readonly name: string;
  readonly version: string;
  readonly sdist: string;
  readonly wheel: string;
}

/**
 * Build an sdist and a wheel of a small project offline with setuptools:
 * a module `<module>` whose `VALUE` is `value`, with Requires-Python and dependencies.
 */
export async function buildSampleProject(
  parent: string,
  options: { name: string; version: string; module: string; value: string; requiresPython?: string; dependencies?: readonly string[] },
): Promise<SampleProject> {
  const src = join(parent, `${options.name}-src-${options.version}`);
  await mkdir(join(src, options.module), { recursive: true });
  await writeFile(join(src, options.module, '__init__.py'), `VALUE = ${JSON.stringify(options.value)}\n`);
  await writeFile(join(src, 'README.md'), `# ${options.name}\n\nA sample project built by pyedge's tests.\n`);
  const deps = (options.dependencies ?? []).map((d) => `    ${d}`).join('\n');
  await writeFile(
    join(src, 'setup.cfg'),
    `[metadata]
name = ${options.name}
version = ${options.version}
description = Sample project for pyedge tests
long_description = file: README.md
long_description_content_type = text/markdown
license = MIT

[options]
packages = ${options.module}
${options.requiresPython ? `python_requires = ${options.requiresPython}\n` : ''}${deps ? `install_requires =\n${deps}\n` : ''}`,
  );
  await writeFile(join(src, 'setup.py'), 'from setuptools import setup\nsetup()\n');
  await writeFile(join(src, 'pyproject.toml'), '[build-system]\nrequires = ["setuptools>=40.8.0", "wheel"]\nbuild-backend = "setuptools.build_meta"\n');
  const r = await run(SYSTEM_PYTHON, ['setup.py', '-q', 'sdist', 'bdist_wheel'], { cwd: src, env: isolatedEnv() });
  if (r.code !== 0) throw new Error(`building ${options.name} failed: ${r.stderr}`);
  const dist = join(src, 'dist');
  const files = await readdir(dist);
  const sdist = files.find((f) => f.endsWith('.tar.gz'));
  const wheel = files.find((f) => f.endsWith('.whl'));
  if (!sdist || !wheel) throw new Error(`building ${options.name} made ${files.join(', ')}`);
  return { name: options.name, version: options.version, sdist: join(dist, sdist), wheel: join(dist, wheel) };
}

/** The real wheels Debian ships (pip, setuptools, wheel). */
export async function debianWheels(): Promise<string[]> {
  return (await readdir(DEBIAN_WHEELS)).filter((f) => f.endsWith('.whl')).map((f) => join(DEBIAN_WHEELS, f));
}
