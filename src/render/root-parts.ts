/**
 * The root index in pieces (head, one entry per project, tail), so a root of
 * hundreds of thousands of projects can be streamed from the database in name
 * order. renderRootHtml/renderRootJson are these pieces joined: same bytes.
 */
import type { ProjectListing } from '../core/model.js';
import { escapeHtml } from './escape-html.js';
import { projectHref } from './simple-page.js';
import { SIMPLE_API_VERSION } from './simple-page.js';

/**
 * Characters that need no escaping in HTML, a URL path segment or a JSON string.
 * Every valid project name is made of these, so at PyPI's size the root's 886k
 * entries skip the escaping functions (a tenth of a rendering's time).
 */
const PLAIN = /^[A-Za-z0-9._-]*$/;

export const rootHtml = {
  head(): string {
    return (
      '<!DOCTYPE html>\n<html lang="en">\n  <head>\n' +
      `    <meta name="pypi:repository-version" content="${SIMPLE_API_VERSION}">\n` +
      '    <title>Simple index</title>\n  </head>\n  <body>\n'
    );
  },
  entry(p: ProjectListing): string {
    if (PLAIN.test(p.name) && PLAIN.test(p.normalizedName)) return `    <a href="${p.normalizedName}/">${p.name}</a>\n`;
    return `    <a href="${escapeHtml(projectHref(p.normalizedName))}">${escapeHtml(p.name)}</a>\n`;
  },
  tail(): string {
    return '  </body>\n</html>\n';
  },
};

export const rootJson = {
  head(lastSerial: number): string {
    return `{"meta":{"_last-serial":${lastSerial},"api-version":"${SIMPLE_API_VERSION}"},"projects":[`;
  },
  /** One entry; `first` says whether a comma goes before it. */
  entry(p: ProjectListing, first: boolean): string {
    const name = PLAIN.test(p.name) ? `"${p.name}"` : JSON.stringify(p.name);
    return `${first ? '' : ','}{"_last-serial":${p.lastSerial},"name":${name}}`;
  },
  tail(): string {
    return ']}';
  },
};
