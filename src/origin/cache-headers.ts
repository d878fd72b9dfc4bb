/**
 * The caching headers of the origin's Simple and JSON API pages, as PyPI sends
 * them: `Cache-Control` for clients, `Surrogate-Control` for a CDN in front
 * (with stale-if-error, so it keeps answering from its copy while the origin
 * is down), and `Surrogate-Key` so that the CDN can purge a project's pages,
 * or the root, with one request.
 */

/** A CDN may serve a page this long past its max-age while it fetches a fresh one, in seconds. */
export const STALE_WHILE_REVALIDATE_S = 300;
/** A CDN may serve a page this long past its max-age while the origin fails, in seconds. */
export const STALE_IF_ERROR_S = 86_400;

/** The headers of a Simple or JSON API page cached for `maxAge` seconds and tagged with `surrogateKey`. */
export function pageCacheHeaders(maxAge: number, surrogateKey: string): Record<string, string> {
  return {
    'cache-control': `max-age=${maxAge}, public`,
    'surrogate-control': `max-age=${maxAge}, stale-while-revalidate=${STALE_WHILE_REVALIDATE_S}, stale-if-error=${STALE_IF_ERROR_S}`,
    'surrogate-key': surrogateKey,
  };
}
