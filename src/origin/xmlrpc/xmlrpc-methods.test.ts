import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PyedgeError } from '../../core/errors.js';
import { FAULT, XmlRpcFault, type XmlRpcCall, type XmlRpcValue } from './xmlrpc-codec.js';
import { dispatch, type XmlRpcMethod } from './xmlrpc-methods.js';

const seen: unknown[][] = [];
const methods = new Map<string, XmlRpcMethod>([
  [
    'changelog',
    {
      params: [
        { name: 'since', type: 'int' },
        { name: 'with_ids', type: 'boolean', default: false },
      ],
      call: async (args) => {
        seen.push([...args]);
        return args.length;
      },
    },
  ],
  ['gone', { params: [], call: async () => Promise.reject(new PyedgeError('PYEDGE_UNAVAILABLE', 'The database is not reachable.')) }],
  ['broken', { params: [], call: async () => Promise.reject(new TypeError('x is undefined')) }],
]);

const int = (value: number): XmlRpcValue => ({ type: 'int', value });
const bool = (value: boolean): XmlRpcValue => ({ type: 'boolean', value });
const str = (value: string): XmlRpcValue => ({ type: 'string', value });

async function faultOf(c: XmlRpcCall, onInternal?: (err: unknown) => void): Promise<XmlRpcFault> {
  try {
    await dispatch(methods, c, onInternal);
  } catch (err) {
    assert.ok(err instanceof XmlRpcFault, String(err));
    return err;
  }
  assert.fail('expected a fault');
}

test('arguments are checked and defaults filled in', async () => {
  seen.length = 0;
  assert.equal(await dispatch(methods, { methodName: 'changelog', params: [int(5)] }), 2);
  assert.equal(await dispatch(methods, { methodName: 'changelog', params: [int(-1), bool(true)] }), 2);
  assert.deepEqual(seen, [[5, false], [-1, true]]);
});

test('an unknown method is fault -32601 naming it', async () => {
  const f = await faultOf({ methodName: 'system.listMethods', params: [] });
  assert.equal(f.faultCode, FAULT.METHOD_NOT_FOUND);
  assert.match(f.faultString, /requested method not found: system\.listMethods/);
});

test('too few, too many or mistyped parameters are fault -32602 saying what was expected', async () => {
  const few = await faultOf({ methodName: 'changelog', params: [] });
  assert.equal(few.faultCode, FAULT.INVALID_PARAMS);
  assert.equal(few.faultString, 'client error; changelog(since, with_ids=false) takes 1 to 2 parameters, 0 given');
  const many = await faultOf({ methodName: 'changelog', params: [int(1), bool(true), int(3)] });
  assert.equal(many.faultCode, FAULT.INVALID_PARAMS);
  // Strict like Warehouse: a boolean is not an int, an int is not a boolean, a numeric string is not an int.
  for (const params of [[bool(true)], [str('5')], [int(1), int(1)], [{ type: 'double', value: 1 } as XmlRpcValue]]) {
    const f = await faultOf({ methodName: 'changelog', params });
    assert.equal(f.faultCode, FAULT.INVALID_PARAMS, JSON.stringify(params));
    assert.match(f.faultString, /^client error; changelog: (since must be an int|with_ids must be a boolean), not /);
  }
});

test('a domain error keeps its message (-32500); anything else is an internal fault, logged', async () => {
  const gone = await faultOf({ methodName: 'gone', params: [] });
  assert.equal(gone.faultCode, FAULT.APPLICATION);
  assert.equal(gone.faultString, 'PYEDGE_UNAVAILABLE: The database is not reachable.');
  const logged: unknown[] = [];
  const broken = await faultOf({ methodName: 'broken', params: [] }, (err) => logged.push(err));
  assert.equal(broken.faultCode, FAULT.INTERNAL);
  assert.doesNotMatch(broken.faultString, /undefined/, 'internals are not shown to clients');
  assert.equal(logged.length, 1);
  assert.ok(logged[0] instanceof TypeError);
});
