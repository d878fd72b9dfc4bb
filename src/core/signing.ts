/**
 * Page signatures (DESIGN.md §7), in the spirit of PEP 381's /serversig: an
 * ed25519 signature over a short statement naming the project, its serial and
 * the SHA-256 of the page's bytes, so a tampered page, or one replayed from an
 * older serial, fails verification. Pure computation; keys are KeyObjects.
 *
 * Statement (UTF-8, each line ending in \n):
 *   pyedge-signature-v1
 *   <normalized project name>
 *   <serial>
 *   <format: html | json>
 *   <sha256 hex of the page bytes>
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export const SIGNATURE_VERSION = 'pyedge-signature-v1';

export type SignedFormat = 'html' | 'json';

/** One page's signature, as the serversig document carries it. */
export interface PageSignature {
  readonly sha256: string;
  /** base64 ed25519 signature of the statement. */
  readonly signature: string;
}

/** The `/serversig/<name>` document: signatures of both encodings of a project page. */
export interface ServerSig {
  readonly version: typeof SIGNATURE_VERSION;
  readonly name: string;
  readonly serial: number;
  /** Id of the signing key (see keyId). */
  readonly key: string;
  readonly html: PageSignature;
  readonly json: PageSignature;
}

export function statement(name: string, serial: number, format: SignedFormat, sha256: string): Buffer {
  return Buffer.from(`${SIGNATURE_VERSION}\n${name}\n${serial}\n${format}\n${sha256}\n`, 'utf8');
}

/** A short, stable id of a public key: the first 16 hex digits of SHA-256 of its DER (SPKI) form. */
export function keyId(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

export function signPage(privateKey: KeyObject, name: string, serial: number, format: SignedFormat, page: Uint8Array): PageSignature {
  const sha256 = createHash('sha256').update(page).digest('hex');
  return { sha256, signature: sign(null, statement(name, serial, format, sha256), privateKey).toString('base64') };
}

/** Key ids by private key: deriving one costs more than the two signatures of a page. */
const signerIds = new WeakMap<KeyObject, string>();

export function signProject(privateKey: KeyObject, name: string, serial: number, html: Uint8Array, json: Uint8Array): ServerSig {
  let id = signerIds.get(privateKey);
  if (id === undefined) signerIds.set(privateKey, (id = keyId(createPublicKey(privateKey))));
  return {
    version: SIGNATURE_VERSION,
    name,
    serial,
    key: id,
    html: signPage(privateKey, name, serial, 'html', html),
    json: signPage(privateKey, name, serial, 'json', json),
  };
}

/**
 * Why a page does not verify, or null when it does: the bytes must hash to what
 * was signed, the signature must be the key's, and name and serial must be the
 * ones the reader expects (a replayed older page carries an older serial).
 */
export function verifyPage(
  publicKey: KeyObject,
  sig: ServerSig,
  expected: { name: string; minSerial?: number },
  format: SignedFormat,
  page: Uint8Array,
): string | null {
  if (sig.version !== SIGNATURE_VERSION) return `unknown signature version ${String(sig.version)}`;
  if (sig.name !== expected.name) return `signature is for project '${sig.name}', not '${expected.name}'`;
  if (expected.minSerial !== undefined && sig.serial < expected.minSerial) {
    return `signature is for serial ${sig.serial}, older than ${expected.minSerial} already seen`;
  }
  if (sig.key !== keyId(publicKey)) return `signed by key ${sig.key}, not the trusted key ${keyId(publicKey)}`;
  const entry = sig[format];
  const sha256 = createHash('sha256').update(page).digest('hex');
  if (entry.sha256 !== sha256) return 'page bytes do not match the signed hash';
  const ok = verify(null, statement(sig.name, sig.serial, format, sha256), publicKey, Buffer.from(entry.signature, 'base64'));
  return ok ? null : 'signature does not verify';
}
