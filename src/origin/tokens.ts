/** API tokens: `pyedge-<id>-<secret>`; only a hash of the secret is stored. */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { sha256Hex } from '../core/hashes.js';
import { PyedgeError } from '../core/errors.js';
import { normalizeName } from '../core/names.js';
import type { Database } from '../db/database.js';
import type { ApiToken } from '../core/model.js';

const TOKEN = /^pyedge-([A-Za-z0-9]{16})-([A-Za-z0-9_-]{43})$/;

export interface IssuedToken {
  /** The whole token, shown once. */
  readonly token: string;
  readonly id: string;
  readonly username: string;
  readonly projectScope: string | null;
}

/** Create the user if new and issue a token, optionally scoped to one project. */
export async function issueToken(db: Database, username: string, project: string | null): Promise<IssuedToken> {
  const user = await db.ensureUser(username);
  const id = randomBytes(12).toString('base64url').replace(/[-_]/g, 'x').slice(0, 16);
  const secret = randomBytes(32).toString('base64url');
  const projectScope = project === null ? null : normalizeName(project);
  await db.createToken({ id, userId: user.id, projectScope, secretHash: sha256Hex(secret) });
  return { token: `pyedge-${id}-${secret}`, id, username: user.username, projectScope };
}

const INVALID_AUTH =
  'Invalid or non-existent authentication information. Upload with username __token__ and an API token as the password (pyedge token create).';

/** The token behind an `Authorization: Basic` header, or a PYEDGE_UNAUTHENTICATED error. */
export async function authenticate(db: Database, authorization: string | undefined): Promise<ApiToken> {
  if (!authorization || !/^basic /i.test(authorization)) {
    throw new PyedgeError('PYEDGE_UNAUTHENTICATED', INVALID_AUTH);
  }
  const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon < 0 ? decoded : decoded.slice(0, colon);
  const password = colon < 0 ? '' : decoded.slice(colon + 1);
  if (user !== '__token__') {
    throw new PyedgeError('PYEDGE_UNAUTHENTICATED', `${INVALID_AUTH} Username/password authentication is not supported.`);
  }
  const m = TOKEN.exec(password.trim());
  if (!m) throw new PyedgeError('PYEDGE_UNAUTHENTICATED', INVALID_AUTH);
  const token = await db.getToken(m[1]!);
  const expected = Buffer.from(token?.secretHash ?? '0'.repeat(64), 'hex');
  const actual = Buffer.from(sha256Hex(m[2]!), 'hex');
  if (!token || !timingSafeEqual(expected, actual)) throw new PyedgeError('PYEDGE_UNAUTHENTICATED', INVALID_AUTH);
  return token;
}
