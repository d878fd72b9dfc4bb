/**
 * A table of XML-RPC methods with typed parameters, and the dispatcher that
 * checks a call against it the way Warehouse does (strict types: an int is
 * not a boolean, a string is not an int).
 */
import { isPyedgeError } from '../../core/errors.js';
import { FAULT, XmlRpcFault, type XmlRpcCall, type XmlRpcData, type XmlRpcValue } from './xmlrpc-codec.js';

export type ParamType = 'int' | 'string' | 'boolean';

/** One parameter: its name (for messages), its wire type, and its default when it may be left out. */
export interface ParamSpec {
  readonly name: string;
  readonly type: ParamType;
  readonly default?: number | string | boolean;
}

/** A method: its parameters and what it does with their checked values. */
export interface XmlRpcMethod {
  readonly params: readonly ParamSpec[];
  call(args: readonly (number | string | boolean)[]): Promise<XmlRpcData>;
}

const TYPE_NAMES: Readonly<Record<XmlRpcValue['type'], string>> = {
  int: 'an int',
  boolean: 'a boolean',
  string: 'a string',
  double: 'a double',
  'dateTime.iso8601': 'a dateTime.iso8601',
  base64: 'base64',
  array: 'an array',
  struct: 'a struct',
  nil: 'nil',
};

function argument(method: string, spec: ParamSpec, value: XmlRpcValue): number | string | boolean {
  if (value.type === spec.type && (value.type === 'int' || value.type === 'string' || value.type === 'boolean')) return value.value;
  throw new XmlRpcFault(FAULT.INVALID_PARAMS, `client error; ${method}: ${spec.name} must be ${TYPE_NAMES[spec.type]}, not ${TYPE_NAMES[value.type]}`);
}

/**
 * Run a decoded call. Throws XmlRpcFault for an unknown method, wrong
 * parameters, or a failure of the method (domain errors keep their message;
 * anything else is an internal error, which `onInternalError` may log).
 */
export async function dispatch(
  methods: ReadonlyMap<string, XmlRpcMethod>,
  call: XmlRpcCall,
  onInternalError: (err: unknown) => void = () => {},
): Promise<XmlRpcData> {
  const method = methods.get(call.methodName);
  if (!method) throw new XmlRpcFault(FAULT.METHOD_NOT_FOUND, `server error; requested method not found: ${call.methodName}`);
  const required = method.params.filter((p) => p.default === undefined).length;
  const given = call.params.length;
  if (given < required || given > method.params.length) {
    const expected = required === method.params.length ? `${required}` : `${required} to ${method.params.length}`;
    const names = method.params.map((p) => (p.default === undefined ? p.name : `${p.name}=${String(p.default)}`)).join(', ');
    throw new XmlRpcFault(
      FAULT.INVALID_PARAMS,
      `client error; ${call.methodName}(${names}) takes ${expected} parameter${expected === '1' ? '' : 's'}, ${given} given`,
    );
  }
  const args = method.params.map((spec, i) => {
    const v = call.params[i];
    return v === undefined ? spec.default! : argument(call.methodName, spec, v);
  });
  try {
    return await method.call(args);
  } catch (err) {
    if (err instanceof XmlRpcFault) throw err;
    if (isPyedgeError(err)) throw new XmlRpcFault(FAULT.APPLICATION, `${err.code}: ${err.message}`);
    onInternalError(err);
    throw new XmlRpcFault(FAULT.INTERNAL, 'server error; internal xml-rpc error. The problem has been logged.');
  }
}
