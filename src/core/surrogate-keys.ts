/**
 * Surrogate keys, as PyPI tags its responses: a CDN that indexes them can purge
 * every page of one project (`project/<name>`: Simple pages, JSON API, release
 * pages) or the root index (`all-projects`) with one request, whatever URLs and
 * content variants it cached. The origin sends them, the static tree keeps them
 * with its objects, the shipped Varnish and nginx configs derive the same ones
 * from the URL, and the publisher purges by them.
 */

/** The root index and the tree-wide small files that change with it. */
export const ALL_PROJECTS_KEY = 'all-projects';

/** Every page of one project; `name` is PEP 503 normalized. */
export function projectKey(name: string): string {
  return `project/${name}`;
}
