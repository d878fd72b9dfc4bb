/**
 * The root index in pieces (head, one entry per project, tail), so a root of
 * hundreds of thousands of projects can be streamed from the database in name
 * order. renderRootHtml/renderRootJson are these pieces joined: same bytes.
 */
import type { ProjectListing } from '../core/model.js';
import { escapeHtml } from './escape-html.js';
import { projectHref } from './simple-page.js';
import { SIMPLE_API_VERSION } from './simple-page.js';

export const rootHtml = {
  head(): string {
    return (
      '<!DOCTYPE html>\n<html lang="en">\n  <head>\n' +
      `    <meta name="pypi:repository-version" content="${SIMPLE_API_VERSION}">\n` +
      '    <title>Simple index</title>\n  </head>\n  <body>\n'
    );
  },
  entry(p: ProjectListing): string {
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
    return `${first ? '' : ','}{"_last-serial":${p.lastSerial},"name":${JSON.stringify(p.name)}}`;
  },
  tail(): string {
    return ']}';
  },
};
