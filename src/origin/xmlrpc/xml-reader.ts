/**
 * A small, strict XML reader for XML-RPC requests: elements, text, character
 * and the five predefined entity references, CDATA and comments. No DTDs (so
 * no entity expansion), no processing instructions beyond the XML declaration.
 * Attributes are read and ignored (some clients declare namespaces); element
 * names lose their namespace prefix, as Python's xmlrpc.client does.
 */

/** One element: its local name, child elements and the text directly inside it. */
export interface XmlElement {
  readonly name: string;
  readonly children: readonly XmlElement[];
  /** Concatenated text and CDATA directly inside the element. */
  readonly text: string;
}

/** Why a document was refused; `position` is a character offset. */
export class XmlSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} (at character ${position})`);
    this.name = 'XmlSyntaxError';
  }
}

/** Nesting deeper than this is refused: XML-RPC needs a handful of levels, recursion must stay bounded. */
export const MAX_XML_DEPTH = 64;

const NAME = /[A-Za-z_:][A-Za-z0-9_.:\u00b7\u00c0-\uffff-]*/y;
const SPACE = /[ \t\r\n]*/y;
const ATTRIBUTE = /[ \t\r\n]+([A-Za-z_:][A-Za-z0-9_.:\u00b7\u00c0-\uffff-]*)[ \t\r\n]*=[ \t\r\n]*("[^"<]*"|'[^'<]*')/y;
const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
// XML 1.0 Char production, without the surrogates (a well-formed JS string pairs them).
const INVALID_CHAR = /[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\ud800-\udbff\udc00-\udfff]/;

function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

class Reader {
  pos = 0;
  constructor(private readonly s: string) {}

  fail(message: string): never {
    throw new XmlSyntaxError(message, this.pos);
  }

  startsWith(token: string): boolean {
    return this.s.startsWith(token, this.pos);
  }

  skipSpace(): void {
    SPACE.lastIndex = this.pos;
    SPACE.exec(this.s);
    this.pos = SPACE.lastIndex;
  }

  name(): string {
    NAME.lastIndex = this.pos;
    const m = NAME.exec(this.s);
    if (!m) this.fail('expected a name');
    this.pos = NAME.lastIndex;
    return m[0];
  }

  expect(token: string): void {
    if (!this.startsWith(token)) this.fail(`expected '${token}'`);
    this.pos += token.length;
  }

  /** Skips `<!-- … -->`; the reader is at `<!--`. */
  comment(): void {
    const end = this.s.indexOf('-->', this.pos + 4);
    if (end < 0) this.fail('unterminated comment');
    if (this.s.slice(this.pos + 4, end).includes('--')) this.fail("'--' inside a comment");
    this.pos = end + 3;
  }

  /** Comments and white space between top-level parts. */
  misc(): void {
    for (;;) {
      this.skipSpace();
      if (this.startsWith('<!--')) this.comment();
      else return;
    }
  }

  reference(): string {
    const end = this.s.indexOf(';', this.pos);
    if (end < 0 || end - this.pos > 12) this.fail("malformed reference (a bare '&' must be written '&amp;')");
    const body = this.s.slice(this.pos + 1, end);
    let out: string;
    if (body.startsWith('#')) {
      const digits = body.slice(1);
      const cp = /^x[0-9A-Fa-f]+$/.test(digits) ? parseInt(digits.slice(1), 16) : /^[0-9]+$/.test(digits) ? parseInt(digits, 10) : NaN;
      if (!isXmlChar(cp)) this.fail(`character reference '&${body};' is not an XML character`);
      out = String.fromCodePoint(cp);
    } else {
      const predefined = PREDEFINED[body];
      if (predefined === undefined) this.fail(`unknown entity '&${body};'`);
      out = predefined;
    }
    this.pos = end + 1;
    return out;
  }

  /** An element; the reader is at its `<`. */
  element(depth: number): XmlElement {
    if (depth > MAX_XML_DEPTH) this.fail(`elements nested deeper than ${MAX_XML_DEPTH}`);
    this.expect('<');
    const qname = this.name();
    for (;;) {
      ATTRIBUTE.lastIndex = this.pos;
      if (!ATTRIBUTE.exec(this.s)) break;
      this.pos = ATTRIBUTE.lastIndex;
    }
    this.skipSpace();
    const name = qname.slice(qname.lastIndexOf(':') + 1);
    if (this.startsWith('/>')) {
      this.pos += 2;
      return { name, children: [], text: '' };
    }
    this.expect('>');
    const children: XmlElement[] = [];
    let text = '';
    for (;;) {
      const lt = this.s.indexOf('<', this.pos);
      if (lt < 0) this.fail(`element '${qname}' is not closed`);
      // Text up to the next markup, with its references decoded.
      while (this.pos < lt) {
        const amp = this.s.indexOf('&', this.pos);
        if (amp < 0 || amp >= lt) {
          text += this.s.slice(this.pos, lt);
          this.pos = lt;
        } else {
          text += this.s.slice(this.pos, amp);
          this.pos = amp;
          text += this.reference();
        }
      }
      if (this.startsWith('</')) {
        this.pos += 2;
        const closing = this.name();
        if (closing !== qname) this.fail(`'</${closing}>' closes '<${qname}>'`);
        this.skipSpace();
        this.expect('>');
        return { name, children, text };
      }
      if (this.startsWith('<!--')) this.comment();
      else if (this.startsWith('<![CDATA[')) {
        const end = this.s.indexOf(']]>', this.pos + 9);
        if (end < 0) this.fail('unterminated CDATA section');
        text += this.s.slice(this.pos + 9, end);
        this.pos = end + 3;
      } else if (this.startsWith('<?') || this.startsWith('<!')) this.fail('processing instructions and declarations are not accepted here');
      else children.push(this.element(depth + 1));
    }
  }
}

/**
 * Parse a whole document into its root element. Throws XmlSyntaxError when it is
 * not well-formed or uses what this reader refuses (DTDs, PIs).
 */
export function readXml(source: string): XmlElement {
  // XML end-of-line handling: CRLF and lone CR read as LF (a CR survives only as `&#13;`).
  const text = source.replace(/\r\n?/g, '\n');
  const bad = INVALID_CHAR.exec(text);
  if (bad) throw new XmlSyntaxError(`character U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0')} is not allowed in XML`, bad.index);
  const r = new Reader(text);
  if (/^<\?xml[ \t\r\n]/.test(text)) {
    const end = text.indexOf('?>');
    if (end < 0) r.fail('unterminated XML declaration');
    r.pos = end + 2;
  }
  r.misc();
  if (r.startsWith('<!DOCTYPE') || r.startsWith('<!doctype')) r.fail('document type declarations are not accepted');
  if (r.startsWith('<?')) r.fail('processing instructions are not accepted');
  if (!r.startsWith('<')) r.fail('expected the root element');
  const root = r.element(1);
  r.misc();
  if (r.pos !== text.length) r.fail('content after the root element');
  return root;
}

/** The `encoding` named by an XML declaration at the start of a document, lower-cased, or null. */
export function declaredEncoding(head: string): string | null {
  const m = /^<\?xml[^>]*?\sencoding\s*=\s*(?:"([^"]*)"|'([^']*)')/.exec(head);
  return m ? (m[1] ?? m[2] ?? '').toLowerCase() : null;
}
