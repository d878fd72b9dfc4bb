/** PEP 503 normalization and PEP 508 validity of project names. */

const VALID_NAME = /^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$/i;

/** Lowercase, with runs of `-`, `_` and `.` folded to one `-` (PEP 503). */
export function normalizeName(name: string): string {
  return name.replace(/[-_.]+/g, '-').toLowerCase();
}

/** True when `name` is a valid project name (PEP 508 / core metadata `Name`). */
export function isValidName(name: string): boolean {
  return name.length <= 200 && VALID_NAME.test(name);
}

/** True when `name` is already in PEP 503 normalized form. */
export function isNormalized(name: string): boolean {
  return normalizeName(name) === name;
}
