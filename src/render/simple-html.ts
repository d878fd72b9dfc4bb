/**
 * PEP 503 HTML pages of the Simple API, laid out as Warehouse lays them out,
 * with PEP 592 yanks, PEP 658/714 metadata and PEP 792 status.
 */
import type { ProjectListing, ProjectState } from '../core/model.js';
import { escapeHtml } from './escape-html.js';
import { rootHtml } from './root-parts.js';
import { SIMPLE_API_VERSION, sortListings, toSimplePage, type SimpleFileView } from './simple-page.js';

function anchor(file: SimpleFileView): string {
  let attrs = ` href="${escapeHtml(`${file.url}#sha256=${file.sha256}`)}"`;
  if (file.requiresPython !== null) attrs += ` data-requires-python="${escapeHtml(file.requiresPython)}"`;
  if (file.yanked !== false) attrs += ` data-yanked="${file.yanked === true ? '' : escapeHtml(file.yanked)}"`;
  if (file.coreMetadataSha256 !== null) {
    const value = escapeHtml(`sha256=${file.coreMetadataSha256}`);
    // PEP 714 allows the old name beside the new one when both carry the same value; older pips read only the old one.
    attrs += ` data-dist-info-metadata="${value}" data-core-metadata="${value}"`;
  }
  return `    <a${attrs}>${escapeHtml(file.filename)}</a><br />\n`;
}

/** The project page `/simple/<normalized>/` as `text/html` or `application/vnd.pypi.simple.v1+html`. */
export function renderProjectHtml(state: ProjectState): string {
  const page = toSimplePage(state);
  const name = escapeHtml(page.name);
  let head = `    <meta name="pypi:repository-version" content="${SIMPLE_API_VERSION}">\n`;
  head += `    <meta name="pypi:project-status" content="${escapeHtml(page.status)}">\n`;
  if (page.statusReason !== null) {
    head += `    <meta name="pypi:project-status-reason" content="${escapeHtml(page.statusReason)}">\n`;
  }
  return (
    '<!DOCTYPE html>\n<html lang="en">\n  <head>\n' +
    head +
    `    <title>Links for ${name}</title>\n  </head>\n  <body>\n    <h1>Links for ${name}</h1>\n` +
    page.files.map(anchor).join('') +
    '  </body>\n</html>\n' +
    // Warehouse's trailer; mirrors (bandersnatch) and our proxy read the serial from it.
    `<!--SERIAL ${page.lastSerial}-->\n`
  );
}

/** The root page `/simple/`, one link per project, relative so the tree works under any prefix. */
export function renderRootHtml(projects: readonly ProjectListing[]): string {
  return rootHtml.head() + sortListings(projects).map((p) => rootHtml.entry(p)).join('') + rootHtml.tail();
}
