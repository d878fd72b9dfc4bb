/** HTML escaping for text and attribute values. */

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&#34;',
  "'": '&#39;',
};

/**
 * Escapes `& < > " '` so a value is safe both as element text and inside a
 * quoted attribute. The numeric entities for quotes are the ones Jinja (and so
 * Warehouse) emits.
 */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => ENTITIES[ch] ?? ch);
}
