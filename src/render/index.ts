/** Pure renderers of the Simple API, shared by the origin and the static tree publisher. */
export { renderProjectHtml, renderRootHtml } from './simple-html.js';
export { renderProjectJson, renderRootJson } from './simple-json.js';
export { negotiateSimpleFormat, contentTypeOf, type SimpleFormat } from './negotiate.js';
export { SIMPLE_API_VERSION } from './simple-page.js';
export { escapeHtml } from './escape-html.js';
export { renderJsonApiPages, renderProjectJsonApi, renderReleaseJsonApi, type JsonApiPages } from './json-api.js';
