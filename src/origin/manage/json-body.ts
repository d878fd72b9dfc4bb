/**
 * Fastify route options for a small JSON object body: a schema that refuses
 * unknown fields (fastify's Ajv would silently drop fields under
 * `additionalProperties: false`), and error messages that name the field.
 */
import type { FastifySchemaValidationError } from 'fastify';
import { PyedgeError } from '../../core/errors.js';

/** One field: a string, optionally one of `enum`, at most `maxLength` characters. */
export interface StringField {
  readonly enum?: readonly string[];
  readonly maxLength?: number;
}

export interface JsonBodyOptions {
  readonly schema: { readonly body: Record<string, unknown> };
  schemaErrorFormatter(errors: FastifySchemaValidationError[]): Error;
}

export function jsonBody(fields: Record<string, StringField>, required: readonly string[] = []): JsonBodyOptions {
  const names = Object.keys(fields);
  const accepted = names.length === 0 ? 'no fields' : names.map((n) => `'${n}'`).join(', ');
  const properties: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(fields)) {
    properties[name] = {
      type: 'string',
      ...(field.enum ? { enum: [...field.enum] } : {}),
      ...(field.maxLength !== undefined ? { maxLength: field.maxLength } : {}),
    };
  }
  return {
    schema: {
      // `not: {}` fails for any value, so an unknown field is an error rather than dropped.
      body: { type: 'object', properties, required: [...required], additionalProperties: { not: {} } },
    },
    schemaErrorFormatter(errors) {
      const e = errors[0];
      const field = e?.instancePath.replace(/^\//, '').replace(/~1/g, '/').replace(/~0/g, '~') ?? '';
      const params = (e?.params ?? {}) as Record<string, unknown>;
      let message: string;
      if (e === undefined) {
        message = 'Invalid request body.';
      } else if (e.keyword === 'not') {
        message = `Unknown field '${field}' in the request body: this endpoint accepts ${accepted}.`;
      } else if (e.keyword === 'type' && field === '') {
        message = `The request body must be a JSON object with ${accepted}.`;
      } else if (e.keyword === 'required') {
        message = `Missing field '${String(params.missingProperty)}' in the request body.`;
      } else if (e.keyword === 'enum') {
        const allowed = Array.isArray(params.allowedValues) ? params.allowedValues.join(', ') : '';
        message = `Invalid value for '${field}': expected one of ${allowed}.`;
      } else if (e.keyword === 'maxLength') {
        message = `Invalid value for '${field}': at most ${String(params.limit)} characters.`;
      } else if (e.keyword === 'type') {
        message = `Invalid value for '${field}': it must be a ${String(params.type)}.`;
      } else {
        message = `Invalid request body: ${field || 'the body'} ${e.message ?? 'is invalid'}.`;
      }
      return new PyedgeError('PYEDGE_BAD_REQUEST', message, { field });
    },
  };
}
