/** HTTP answers the origin and the edge give alike. */

/** Warehouse's CORS headers on the JSON API: browsers may read it and its serial from any origin. */
export const JSON_API_CORS_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'Content-Type, If-Match, If-Modified-Since, If-None-Match, If-Unmodified-Since',
  'access-control-allow-methods': 'GET',
  'access-control-max-age': '86400',
  'access-control-expose-headers': 'X-PyPI-Last-Serial',
});

/** The 406 message of the Simple API when `Accept` (or `?format=`) names none of the PEP 691 formats. */
export const SIMPLE_NOT_ACCEPTABLE =
  'Not Acceptable: this index serves application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html or text/html (PEP 691); or use ?format=.';
