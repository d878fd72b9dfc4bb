/**
 * XML-RPC on the wire: a strict reader for `<methodCall>` requests and a writer
 * for `<methodResponse>` answers and faults (http://xmlrpc.com/spec.md), with
 * the fault codes Warehouse's pyramid_rpc gives.
 */
import { declaredEncoding, readXml, XmlSyntaxError, type XmlElement } from './xml-reader.js';

/** Largest request accepted: XML-RPC calls of the mirror API are a few hundred bytes. */
export const MAX_REQUEST_BYTES = 1024 * 1024;

/** Fault codes (the xmlrpc-epi set pyramid_rpc and so Warehouse use). */
export const FAULT = {
  NOT_WELL_FORMED: -32700,
  UNSUPPORTED_ENCODING: -32701,
  INVALID_XMLRPC: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL: -32603,
  APPLICATION: -32500,
} as const;

/** An answer that is an XML-RPC fault rather than a result. */
export class XmlRpcFault extends Error {
  constructor(
    readonly faultCode: number,
    readonly faultString: string,
  ) {
    super(faultString);
    this.name = 'XmlRpcFault';
  }
}

/** A request parameter with its wire type kept: Warehouse checks types strictly (an int is not a boolean). */
export type XmlRpcValue =
  | { readonly type: 'int'; readonly value: number }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'double'; readonly value: number }
  | { readonly type: 'dateTime.iso8601'; readonly value: string }
  | { readonly type: 'base64'; readonly value: Buffer }
  | { readonly type: 'array'; readonly value: readonly XmlRpcValue[] }
  | { readonly type: 'struct'; readonly value: ReadonlyMap<string, XmlRpcValue> }
  | { readonly type: 'nil'; readonly value: null };

/** A decoded `<methodCall>`. */
export interface XmlRpcCall {
  readonly methodName: string;
  readonly params: readonly XmlRpcValue[];
}

/** What answers are built from; a Map or object becomes a struct (in its key order), a non-integer number a double. */
export type XmlRpcData =
  | null
  | boolean
  | number
  | string
  | readonly XmlRpcData[]
  | ReadonlyMap<string, XmlRpcData>
  | { readonly [key: string]: XmlRpcData };

function invalid(detail: string): XmlRpcFault {
  return new XmlRpcFault(FAULT.INVALID_XMLRPC, `server error; invalid xml-rpc. not conforming to spec: ${detail}`);
}

function decodeText(body: Buffer): string {
  let bytes = body;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  else if ((bytes[0] === 0xfe && bytes[1] === 0xff) || (bytes[0] === 0xff && bytes[1] === 0xfe)) {
    throw new XmlRpcFault(FAULT.UNSUPPORTED_ENCODING, 'parse error; unsupported encoding: UTF-16 (send UTF-8)');
  }
  const encoding = declaredEncoding(bytes.subarray(0, 200).toString('latin1')) ?? 'utf-8';
  if (encoding === 'iso-8859-1' || encoding === 'latin-1' || encoding === 'latin1') return bytes.toString('latin1');
  if (encoding !== 'utf-8' && encoding !== 'utf8' && encoding !== 'us-ascii' && encoding !== 'ascii') {
    throw new XmlRpcFault(FAULT.UNSUPPORTED_ENCODING, `parse error; unsupported encoding: ${encoding.slice(0, 40)} (send UTF-8)`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new XmlRpcFault(FAULT.NOT_WELL_FORMED, 'parse error; not well formed: the body is not valid UTF-8');
  }
}

/** A leaf element's text; refuses child elements. */
function leaf(el: XmlElement): string {
  if (el.children.length > 0) throw invalid(`<${el.name}> cannot contain <${el.children[0]!.name}>`);
  return el.text;
}

/** A container's children; refuses text between them. */
function only(el: XmlElement, allowed: string): readonly XmlElement[] {
  if (el.text.trim() !== '') throw invalid(`text inside <${el.name}>`);
  for (const c of el.children) if (c.name !== allowed) throw invalid(`<${c.name}> inside <${el.name}>, expected <${allowed}>`);
  return el.children;
}

const INTEGER = /^[+-]?[0-9]+$/;
const DOUBLE = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function typed(el: XmlElement): XmlRpcValue {
  switch (el.name) {
    case 'int':
    case 'i4':
    case 'i8': {
      const t = leaf(el).trim();
      const n = INTEGER.test(t) ? Number(t) : NaN;
      if (!Number.isSafeInteger(n)) throw invalid(`<${el.name}>${t.slice(0, 40)}</${el.name}> is not an integer this server can read`);
      return { type: 'int', value: n };
    }
    case 'boolean': {
      const t = leaf(el).trim();
      if (t !== '0' && t !== '1') throw invalid(`<boolean> must hold 0 or 1, not '${t.slice(0, 40)}'`);
      return { type: 'boolean', value: t === '1' };
    }
    case 'string':
      return { type: 'string', value: leaf(el) };
    case 'double': {
      const t = leaf(el).trim();
      if (!DOUBLE.test(t)) throw invalid(`<double>${t.slice(0, 40)}</double> is not a number`);
      return { type: 'double', value: Number(t) };
    }
    case 'dateTime.iso8601':
      return { type: 'dateTime.iso8601', value: leaf(el).trim() };
    case 'base64': {
      const t = leaf(el).replace(/[ \t\r\n]+/g, '');
      if (!BASE64.test(t) || t.length % 4 === 1) throw invalid('<base64> does not hold base64');
      return { type: 'base64', value: Buffer.from(t, 'base64') };
    }
    case 'nil':
      if (leaf(el).trim() !== '') throw invalid('<nil/> must be empty');
      return { type: 'nil', value: null };
    case 'array': {
      const data = only(el, 'data');
      if (data.length !== 1) throw invalid('<array> must hold one <data>');
      return { type: 'array', value: only(data[0]!, 'value').map(valueOf) };
    }
    case 'struct': {
      const members = new Map<string, XmlRpcValue>();
      for (const m of only(el, 'member')) {
        if (m.text.trim() !== '' || m.children.length !== 2) throw invalid('<member> must hold one <name> and one <value>');
        const name = m.children.find((c) => c.name === 'name');
        const value = m.children.find((c) => c.name === 'value');
        if (!name || !value) throw invalid('<member> must hold one <name> and one <value>');
        members.set(leaf(name), valueOf(value));
      }
      return { type: 'struct', value: members };
    }
    default:
      throw invalid(`unknown type <${el.name.slice(0, 40)}>`);
  }
}

function valueOf(el: XmlElement): XmlRpcValue {
  // A <value> with no type element is a string, white space and all.
  if (el.children.length === 0) return { type: 'string', value: el.text };
  if (el.children.length > 1 || el.text.trim() !== '') throw invalid('<value> must hold one typed value');
  return typed(el.children[0]!);
}

/** Decode a request body. Throws XmlRpcFault (never anything else) when it is not a valid call. */
export function decodeMethodCall(body: Buffer): XmlRpcCall {
  if (body.length > MAX_REQUEST_BYTES) throw invalid(`the request is larger than ${MAX_REQUEST_BYTES} bytes`);
  const text = decodeText(body);
  let root: XmlElement;
  try {
    root = readXml(text);
  } catch (err) {
    if (err instanceof XmlSyntaxError) throw new XmlRpcFault(FAULT.NOT_WELL_FORMED, `parse error; not well formed: ${err.message}`);
    throw err;
  }
  if (root.name !== 'methodCall') throw invalid(`the root element is <${root.name.slice(0, 40)}>, expected <methodCall>`);
  if (root.text.trim() !== '') throw invalid('text inside <methodCall>');
  const names = root.children.filter((c) => c.name === 'methodName');
  const params = root.children.filter((c) => c.name === 'params');
  if (names.length !== 1 || params.length > 1 || names.length + params.length !== root.children.length) {
    throw invalid('<methodCall> must hold one <methodName> and at most one <params>');
  }
  const methodName = leaf(names[0]!).trim();
  if (!/^[A-Za-z0-9_.:/]{1,100}$/.test(methodName)) throw invalid('the method name is empty or has characters XML-RPC does not allow');
  const values = params.length === 0 ? [] : only(params[0]!, 'param').map((p) => {
    const v = only(p, 'value');
    if (v.length !== 1) throw invalid('<param> must hold one <value>');
    return valueOf(v[0]!);
  });
  return { methodName, params: values };
}

/** Characters XML 1.0 cannot carry are dropped (as Warehouse's `_clean_for_xml` does); valid surrogate pairs kept. */
const UNSAFE = /[\ud800-\udbff][\udc00-\udfff]|[^\t\n\r\u0020-\ud7ff\ue000-\ufffd]|[&<>\r]/g;

function escapeText(s: string): string {
  return s.replace(UNSAFE, (c) => {
    if (c.length === 2) return c;
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '\r':
        // A raw CR would reach the client as LF (XML end-of-line handling).
        return '&#13;';
      default:
        return '';
    }
  });
}

function member(name: string, value: XmlRpcData): string {
  return `<member><name>${escapeText(name)}</name>${encodeValue(value)}</member>`;
}

function entriesOf(value: ReadonlyMap<string, XmlRpcData> | { readonly [key: string]: XmlRpcData }): Iterable<[string, XmlRpcData]> {
  return value instanceof Map ? (value as ReadonlyMap<string, XmlRpcData>).entries() : Object.entries(value);
}

/** One `<value>…</value>`. */
export function encodeValue(value: XmlRpcData): string {
  if (value === null) return '<value><nil/></value>';
  switch (typeof value) {
    case 'boolean':
      return `<value><boolean>${value ? 1 : 0}</boolean></value>`;
    case 'number':
      if (Number.isInteger(value)) return `<value><int>${value}</int></value>`;
      if (!Number.isFinite(value)) throw new RangeError('XML-RPC cannot carry a non-finite number');
      return `<value><double>${value}</double></value>`;
    case 'string':
      return `<value><string>${escapeText(value)}</string></value>`;
  }
  if (Array.isArray(value)) return `<value><array><data>${(value as readonly XmlRpcData[]).map(encodeValue).join('')}</data></array></value>`;
  let out = '<value><struct>';
  for (const [k, v] of entriesOf(value as ReadonlyMap<string, XmlRpcData>)) out += member(k, v);
  return out + '</struct></value>';
}

const RESPONSE_HEAD = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n";
const RESPONSE_TAIL = '\n</param>\n</params>\n</methodResponse>\n';

/** The parts of a response: one per top-level array item or struct member. */
function* responseParts(value: XmlRpcData): Generator<string, void, undefined> {
  yield RESPONSE_HEAD;
  if (Array.isArray(value)) {
    yield '<value><array><data>';
    for (const item of value as readonly XmlRpcData[]) yield encodeValue(item);
    yield '</data></array></value>';
  } else if (value !== null && typeof value === 'object') {
    yield '<value><struct>';
    for (const [k, v] of entriesOf(value as ReadonlyMap<string, XmlRpcData>)) yield member(k, v);
    yield '</struct></value>';
  } else {
    yield encodeValue(value);
  }
  yield RESPONSE_TAIL;
}

/**
 * A `<methodResponse>` in chunks of about `chunkChars` characters, so that a
 * result with a million entries is never one huge string.
 */
export function* encodeResponse(value: XmlRpcData, chunkChars = 64 * 1024): Generator<string, void, undefined> {
  let buffer = '';
  for (const part of responseParts(value)) {
    buffer += part;
    if (buffer.length >= chunkChars) {
      yield buffer;
      buffer = '';
    }
  }
  if (buffer !== '') yield buffer;
}

/** A whole `<methodResponse>` as one string (small answers, tests). */
export function encodeResponseString(value: XmlRpcData): string {
  return [...encodeResponse(value)].join('');
}

/** A `<methodResponse>` carrying a fault. */
export function encodeFault(faultCode: number, faultString: string): string {
  return (
    "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n" +
    encodeValue(new Map<string, XmlRpcData>([['faultCode', faultCode], ['faultString', faultString]])) +
    '\n</fault>\n</methodResponse>\n'
  );
}
