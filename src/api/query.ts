import type { Request } from 'express';
import { z } from 'zod';
import { badRequest } from '../http/errors.js';

/** Validates a request part with zod; failures become a 400 with one detail per field. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw badRequest('invalid_request', `the ${what} is not valid`, result.error.issues.map((issue) => ({
      field: issue.path.join('.') || '(root)',
      problem: issue.message,
    })));
  }
  return result.data;
}

export const limitParam = z.coerce.number().int().min(1).max(500).default(50);

export function queryOf(req: Request): Record<string, unknown> {
  return req.query as Record<string, unknown>;
}

/** Opaque cursors for newest-first lists: base64url of JSON. */
export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T>(schema: z.ZodType<T>, cursor: string): T {
  try {
    return parseWith(schema, JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')), 'cursor');
  } catch {
    throw badRequest('invalid_cursor', 'the cursor is not one this API returned');
  }
}
