import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  decodeMethodCall,
  encodeFault,
  encodeResponse,
  encodeResponseString,
  encodeValue,
  FAULT,
  MAX_REQUEST_BYTES,
  XmlRpcFault,
  type XmlRpcValue,
} from './xmlrpc-codec.js';
import { MAX_XML_DEPTH } from './xml-reader.js';

/** Plain JS view of decoded values, for deepEqual. */
function plain(v: XmlRpcValue): unknown {
  switch (v.type) {
    case 'array':
      return v.value.map(plain);
    case 'struct':
      return Object.fromEntries([...v.value].map(([k, x]) => [k, plain(x)]));
    case 'base64':
      return { base64: v.value.toString('utf8') };
    case 'double':
      return { double: v.value };
    case 'dateTime.iso8601':
      return { dateTime: v.value };
    default:
      return v.value;
  }
}

function call(xml: string): { methodName: string; params: unknown[] } {
  const c = decodeMethodCall(Buffer.from(xml));
  return { methodName: c.methodName, params: c.params.map(plain) };
}

function faultOf(body: string | Buffer): XmlRpcFault {
  try {
    decodeMethodCall(typeof body === 'string' ? Buffer.from(body) : body);
  } catch (err) {
    assert.ok(err instanceof XmlRpcFault, `expected a fault, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a fault');
}

const wrap = (params: string): string => `<?xml version="1.0"?><methodCall><methodName>m</methodName><params>${params}</params></methodCall>`;
const param = (value: string): string => wrap(`<param><value>${value}</value></param>`);

function python(script: string, input: string): string {
  const r = spawnSync('/usr/bin/python3', ['-c', script], { input, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('decodes what Python\'s xmlrpc.client sends, every type included', () => {
  const xml = python(
    `import sys, xmlrpc.client
print(xmlrpc.client.dumps((5, True, False, 'a <b> & "c"\\r\\n\\u00e9\\U0001F600', 1.5, [1, ['x']], {'k': 'v', 'n': None}, -2**31, xmlrpc.client.Binary(b'bytes'), xmlrpc.client.DateTime('20240102T03:04:05')), 'changelog', allow_none=True), end='')`,
    '',
  );
  assert.deepEqual(call(xml), {
    methodName: 'changelog',
    params: [5, true, false, 'a <b> & "c"\n\u00e9\u{1F600}', { double: 1.5 }, [1, ['x']], { k: 'v', n: null }, -(2 ** 31), { base64: 'bytes' }, { dateTime: '20240102T03:04:05' }],
  });
});

test('every scalar form, entities, CDATA, comments and namespaced names', () => {
  assert.deepEqual(call(param('<i4> 7 </i4>')).params, [7]);
  assert.deepEqual(call(param('<i8>-9007199254740991</i8>')).params, [-9007199254740991]);
  assert.deepEqual(call(param('<int>+3</int>')).params, [3]);
  assert.deepEqual(call(param('<boolean>0</boolean>')).params, [false]);
  // A bare <value> is a string, white space kept.
  assert.deepEqual(call(param('  two words ')).params, ['  two words ']);
  assert.deepEqual(call(param('<string></string>')).params, ['']);
  assert.deepEqual(call(param('<string/>')).params, ['']);
  assert.deepEqual(call(param('<string>&lt;&gt;&amp;&quot;&apos;&#65;&#x1F600;</string>')).params, ['<>&"\'A\u{1F600}']);
  assert.deepEqual(call(param('<string>a\r\nb\rc&#13;</string>')).params, ['a\nb\nc\r'], 'XML end-of-line handling');
  assert.deepEqual(call(param('<string><![CDATA[<not> & markup]]>!</string>')).params, ['<not> & markup!']);
  assert.deepEqual(call(param('<double>-1.25e2</double>')).params, [{ double: -125 }]);
  assert.deepEqual(call(param('<base64>Ynl0\nZXM=</base64>')).params, [{ base64: 'bytes' }]);
  assert.deepEqual(call(param('<ex:nil xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions"/>')).params, [null]);
  assert.deepEqual(call(param('<struct><member><value><int>1</int></value><name>b</name></member><member><name>a</name><value>x</value></member></struct>')).params, [{ b: 1, a: 'x' }]);
  assert.deepEqual(call(param('<array><data/></array>')).params, [[]]);
  assert.deepEqual(
    call("\ufeff<?xml version='1.0' encoding='UTF-8'?>\n<!-- hi --><methodCall>\n <methodName> list_packages </methodName>\n</methodCall>\n<!-- bye -->").methodName,
    'list_packages',
  );
  assert.deepEqual(call('<methodCall><methodName>m</methodName><params></params></methodCall>').params, []);
});

test('declared Latin-1 is read as Latin-1; UTF-8 is the default', () => {
  const latin = Buffer.concat([Buffer.from("<?xml version='1.0' encoding='ISO-8859-1'?><methodCall><methodName>m</methodName><params><param><value>"), Buffer.from([0xe9]), Buffer.from('</value></param></params></methodCall>')]);
  assert.deepEqual(decodeMethodCall(latin).params.map(plain), ['\u00e9']);
  assert.deepEqual(call(param('\u00e9')).params, ['\u00e9']);
});

test('malformed XML is a not-well-formed fault (-32700), never an exception of another kind', () => {
  const cases = [
    '',
    'garbage',
    '<methodCall><methodName>m</methodName>',
    '<methodCall><methodName>m</methodCall>',
    param('<string>a & b</string>'),
    param('<string>&nbsp;</string>'),
    param('<string>&#0;</string>'),
    param('<string>&#xD800;</string>'),
    param('<string>\u0001</string>'),
    '<methodCall><methodName>m</methodName></methodCall>trailing',
    '<methodCall><methodName>m</methodName></methodCall><methodCall/>',
    '<!DOCTYPE lol [<!ENTITY a "aaaaaaaa">]><methodCall><methodName>&a;</methodName></methodCall>',
    '<?php echo 1; ?><methodCall><methodName>m</methodName></methodCall>',
    param('<string><?pi x?></string>'),
    '<methodCall><methodName>m</methodName><!-- a -- b --></methodCall>',
    '<methodCall attr=novalue><methodName>m</methodName></methodCall>',
    wrap('<param><value>' + '<array><data><value>'.repeat(MAX_XML_DEPTH) + '1' + '</value></data></array>'.repeat(MAX_XML_DEPTH) + '</value></param>'),
  ];
  for (const body of cases) {
    const f = faultOf(body);
    assert.equal(f.faultCode, FAULT.NOT_WELL_FORMED, `${body.slice(0, 80)} → ${f.faultString}`);
    assert.match(f.faultString, /^parse error; not well formed/);
  }
  assert.equal(faultOf(Buffer.from([0x3c, 0x61, 0xff, 0x3e])).faultCode, FAULT.NOT_WELL_FORMED, 'invalid UTF-8');
});

test('encodings other than UTF-8 and Latin-1 are refused (-32701)', () => {
  assert.equal(faultOf(Buffer.from([0xff, 0xfe, 0x3c, 0x00])).faultCode, FAULT.UNSUPPORTED_ENCODING);
  assert.equal(faultOf('<?xml version="1.0" encoding="Shift_JIS"?><methodCall/>').faultCode, FAULT.UNSUPPORTED_ENCODING);
});

test('well-formed XML that is not an XML-RPC call is an invalid-request fault (-32600)', () => {
  const cases = [
    '<methodResponse/>',
    '<methodCall/>',
    '<methodCall><methodName>a</methodName><methodName>b</methodName></methodCall>',
    '<methodCall><methodName>m</methodName><params/><params/></methodCall>',
    '<methodCall><methodName>m</methodName><other/></methodCall>',
    '<methodCall>text<methodName>m</methodName></methodCall>',
    '<methodCall><methodName></methodName></methodCall>',
    '<methodCall><methodName>bad name!</methodName></methodCall>',
    '<methodCall><methodName><b>m</b></methodName></methodCall>',
    wrap('<param><value><int>1</int></value><value/></param>'),
    wrap('<param>x<value/></param>'),
    wrap('<value/>'),
    param('<int>12a</int>'),
    param('<int>99999999999999999999</int>'),
    param('<int></int>'),
    param('<boolean>true</boolean>'),
    param('<double>NaN</double>'),
    param('<base64>!!</base64>'),
    param('<nil>x</nil>'),
    param('<float>1</float>'),
    param('<int>1</int><int>2</int>'),
    param('x<int>1</int>'),
    param('<string><b/></string>'),
    param('<array><value/></array>'),
    param('<array><data/><data/></array>'),
    param('<array><data><int>1</int></data></array>'),
    param('<struct><member><name>a</name></member></struct>'),
    param('<struct><member><name>a</name><value/><value/></member></struct>'),
    param('<struct><value/></struct>'),
  ];
  for (const body of cases) {
    const f = faultOf(body);
    assert.equal(f.faultCode, FAULT.INVALID_XMLRPC, `${body} → ${f.faultString}`);
    assert.match(f.faultString, /^server error; invalid xml-rpc/);
  }
});

test('bodies over the size limit are refused before parsing', () => {
  const big = Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x20);
  const f = faultOf(big);
  assert.equal(f.faultCode, FAULT.INVALID_XMLRPC);
  assert.match(f.faultString, /larger than 1048576 bytes/);
  // Just under the limit still parses.
  const padded = param('<string>x</string>');
  const ok = Buffer.concat([Buffer.from(padded), Buffer.alloc(MAX_REQUEST_BYTES - padded.length, 0x20)]);
  assert.deepEqual(decodeMethodCall(ok).params.map(plain), ['x']);
});

test('values encode with escaping; characters XML cannot carry are dropped, pairs kept', () => {
  assert.equal(encodeValue('a<b>&c\r\n'), '<value><string>a&lt;b&gt;&amp;c&#13;\n</string></value>');
  assert.equal(encodeValue('x\u0000\u0008\ufffe\ud800y\u{1F600}'), '<value><string>xy\u{1F600}</string></value>');
  assert.equal(encodeValue(null), '<value><nil/></value>');
  assert.equal(encodeValue(true), '<value><boolean>1</boolean></value>');
  assert.equal(encodeValue(-1), '<value><int>-1</int></value>');
  assert.equal(encodeValue(0.5), '<value><double>0.5</double></value>');
  assert.equal(encodeValue([1, 'a']), '<value><array><data><value><int>1</int></value><value><string>a</string></value></data></array></value>');
  assert.equal(
    encodeValue(new Map([['z<', 1], ['a', 2]])),
    '<value><struct><member><name>z&lt;</name><value><int>1</int></value></member><member><name>a</name><value><int>2</int></value></member></struct></value>',
  );
  assert.throws(() => encodeValue(Number.POSITIVE_INFINITY), RangeError);
});

test('Python\'s xmlrpc.client reads our responses and faults back to the same values', () => {
  const value = {
    text: 'a <b> & "c" \r\n é \u{1F600}',
    nothing: null,
    flags: [true, false],
    numbers: [0, -1, 2147483647, 30_000_000_000, 0.25],
    nested: new Map([['__proto__', [[]]], ['k', {}]]),
  };
  const out = python(
    `import sys, json, xmlrpc.client
(v,), m = xmlrpc.client.loads(sys.stdin.read())
print(json.dumps(v, sort_keys=True))`,
    encodeResponseString(value),
  );
  // Parsed from text so that "__proto__" stays an ordinary key.
  const expected: unknown = JSON.parse(
    '{"flags":[true,false],"nested":{"__proto__":[[]],"k":{}},"nothing":null,"numbers":[0,-1,2147483647,30000000000,0.25],' +
      `"text":${JSON.stringify(value.text)}}`,
  );
  assert.deepEqual(JSON.parse(out), expected);
  const fault = python(
    `import sys, xmlrpc.client
try:
    xmlrpc.client.loads(sys.stdin.read())
except xmlrpc.client.Fault as f:
    print(f.faultCode, f.faultString)`,
    encodeFault(-32601, 'server error; requested method not found: x<y>'),
  );
  assert.equal(fault.trim(), '-32601 server error; requested method not found: x<y>');
});

test('large responses come in bounded chunks that join to the whole', () => {
  const big = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) big.set(`project-${i}`, i);
  const chunks = [...encodeResponse(big, 16 * 1024)];
  assert.ok(chunks.length > 10, `${chunks.length} chunks`);
  for (const c of chunks.slice(0, -1)) assert.ok(c.length >= 16 * 1024 && c.length < 17 * 1024, `chunk of ${c.length}`);
  const whole = chunks.join('');
  assert.equal(whole, encodeResponseString(big));
  assert.ok(whole.startsWith("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><struct><member><name>project-0</name>"));
  assert.ok(whole.endsWith('</struct></value>\n</param>\n</params>\n</methodResponse>\n'));
  assert.deepEqual([...encodeResponse(5)], ["<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><int>5</int></value>\n</param>\n</params>\n</methodResponse>\n"]);
});
