/** The server's ed25519 signing key on disk: generated on first use, rotated on demand. */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, writeFile, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PyedgeError } from '../core/errors.js';
import { keyId } from '../core/signing.js';

export interface ServerKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The public key as PEM (SPKI), what `/serverkey` serves. */
  readonly publicPem: string;
  readonly id: string;
}

/** Where a data folder keeps its key. */
export function keyPathIn(dataDir: string): string {
  return join(dataDir, 'keys', 'server-key.pem');
}

function fromPrivatePem(pem: string, path: string): ServerKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw new PyedgeError('PYEDGE_CONFIG', `The signing key ${path} is not a PEM private key.`, { path }, { cause: err });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new PyedgeError('PYEDGE_CONFIG', `The signing key ${path} is ${privateKey.asymmetricKeyType}, not ed25519.`, { path });
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), id: keyId(publicKey) };
}

async function writePrivate(path: string, pem: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(pem);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

function generatePem(): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Load the key at `path`; with `create`, generate one when there is none. */
export async function loadServerKey(path: string, options: { create: boolean }): Promise<ServerKey> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !options.create) {
      throw new PyedgeError('PYEDGE_CONFIG', `Cannot read the signing key ${path}: ${(err as Error).message}. Create one with 'pyedge key generate'.`, {
        path,
      });
    }
    pem = generatePem();
    await writePrivate(path, pem);
  }
  return fromPrivatePem(pem, path);
}

/**
 * Replace the key with a new one. The old private key is kept beside it as
 * `server-key.pem.<id>.retired` so signatures made with it can still be checked.
 */
export async function rotateServerKey(path: string): Promise<{ previous: ServerKey | null; current: ServerKey }> {
  let previous: ServerKey | null = null;
  try {
    previous = fromPrivatePem(await readFile(path, 'utf8'), path);
    await writeFile(`${path}.${previous.id}.retired`, previous.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const pem = generatePem();
  await writePrivate(path, pem);
  return { previous, current: fromPrivatePem(pem, path) };
}
