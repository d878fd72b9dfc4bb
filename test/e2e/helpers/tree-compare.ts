/**
 * Compares a static tree with the origin it was published from, page by page:
 * the root (HTML twice and JSON), `last-modified`, every project's Simple pages
 * byte for byte, its JSON API pages byte for byte once file URLs on the tree's
 * public URL are moved back to the origin's, and no page of anything the origin
 * does not have. Reads the tree through two functions, so folders and buckets
 * compare alike.
 */

export interface TreeAccess {
  /** The bytes at a key, or null when there is none. */
  read(key: string): Promise<Buffer | null>;
  /** Every key under a prefix. */
  keys(prefix: string): Promise<string[]>;
}

export interface TreeComparison {
  /** Pages compared. */
  readonly compared: number;
  readonly mismatches: readonly string[];
  /** Files the tree holds that no origin page links (a crash between a page write and a delete leaves them). */
  readonly extraFiles: readonly string[];
}

const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json';
const SIMPLE_HTML = 'application/vnd.pypi.simple.v1+html';

async function fromOrigin(url: string, accept?: string): Promise<Buffer | null> {
  const res = await fetch(url, accept ? { headers: { accept } } : {});
  if (res.status === 404) {
    await res.arrayBuffer();
    return null;
  }
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** Compares; `publicUrl` is the tree's `--public-url` (null: JSON API URLs were left on the origin). */
export async function compareTreeWithOrigin(tree: TreeAccess, originUrl: string, publicUrl: string | null): Promise<TreeComparison> {
  const mismatches: string[] = [];
  let compared = 0;
  const same = async (key: string, origin: Buffer | null, rewrite = false): Promise<void> => {
    compared++;
    let mine = await tree.read(key);
    if (mine !== null && rewrite && publicUrl !== null) {
      mine = Buffer.from(mine.toString('utf8').split(`"url":"${publicUrl}/packages/`).join(`"url":"${originUrl}/packages/`));
    }
    if (mine === null && origin === null) return;
    if (mine === null) mismatches.push(`${key}: missing from the tree`);
    else if (origin === null) mismatches.push(`${key}: in the tree, not at the origin`);
    else if (!mine.equals(origin)) mismatches.push(`${key}: differs from the origin's (${mine.length} bytes, the origin's ${origin.length})`);
  };

  const rootJson = await fromOrigin(`${originUrl}/simple/`, SIMPLE_JSON);
  await same('simple/index.html', await fromOrigin(`${originUrl}/simple/`, 'text/html'));
  await same('simple/index.v1_html', await fromOrigin(`${originUrl}/simple/`, SIMPLE_HTML));
  await same('simple/index.v1_json', rootJson);
  await same('last-modified', await fromOrigin(`${originUrl}/last-modified`));

  const names = (JSON.parse(rootJson!.toString('utf8')) as { projects: { name: string }[] }).projects.map((p) => p.name);
  const expected = new Set<string>();
  const linked = new Set<string>();
  for (const name of names) {
    const simple = `${originUrl}/simple/${name}/`;
    await same(`simple/${name}/index.html`, await fromOrigin(simple, 'text/html'));
    await same(`simple/${name}/index.v1_html`, await fromOrigin(simple, SIMPLE_HTML));
    const page = await fromOrigin(simple, SIMPLE_JSON);
    await same(`simple/${name}/index.v1_json`, page);
    for (const f of (JSON.parse(page!.toString('utf8')) as { files: { url: string; 'core-metadata'?: unknown }[] }).files) {
      const path = f.url.replace(/^\.\.\/\.\.\//, '').replace(/#.*$/, '');
      linked.add(path);
      if (f['core-metadata']) linked.add(`${path}.metadata`);
    }
    for (const key of ['index.html', 'index.v1_html', 'index.v1_json', 'serversig']) expected.add(`simple/${name}/${key}`);
    const api = await fromOrigin(`${originUrl}/pypi/${name}/json`);
    await same(`pypi/${name}/json`, api, true);
    if (api === null) continue;
    expected.add(`pypi/${name}/json`);
    for (const version of Object.keys((JSON.parse(api.toString('utf8')) as { releases: Record<string, unknown> }).releases)) {
      await same(`pypi/${name}/${version}/json`, await fromOrigin(`${originUrl}/pypi/${name}/${version}/json`), true);
      expected.add(`pypi/${name}/${version}/json`);
    }
  }
  const rootKeys = new Set(['simple/index.html', 'simple/index.v1_html', 'simple/index.v1_json']);
  const pages = new Set([...(await tree.keys('simple/')), ...(await tree.keys('pypi/'))]);
  for (const key of pages) if (!expected.has(key) && !rootKeys.has(key)) mismatches.push(`${key}: in the tree, not at the origin`);
  for (const key of expected) if (!pages.has(key)) mismatches.push(`${key}: missing from the tree`);
  const files = await tree.keys('packages/');
  const held = new Set(files);
  for (const path of linked) if (!held.has(path)) mismatches.push(`${path}: linked by the origin, missing from the tree`);
  const extraFiles = files.filter((k) => !linked.has(k));
  return { compared, mismatches, extraFiles };
}
