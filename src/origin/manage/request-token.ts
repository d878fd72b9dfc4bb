/** The API token behind a management request: `Basic __token__:TOKEN` (as twine sends it) or `Bearer TOKEN`. */
import type { ApiToken } from '../../core/model.js';
import type { Database } from '../../db/database.js';
import { authenticate } from '../tokens.js';

/** Authenticates like an upload; a bearer token is checked exactly as the same token sent with Basic. */
export function authenticateRequest(db: Database, authorization: string | undefined): Promise<ApiToken> {
  const bearer = authorization === undefined ? null : /^bearer\s+(\S+)\s*$/i.exec(authorization);
  if (bearer) return authenticate(db, `Basic ${Buffer.from(`__token__:${bearer[1]}`).toString('base64')}`);
  return authenticate(db, authorization);
}
