import { badRequest } from '../http/errors.js';

/** Parses a verified body and pulls out the event type (and id where the payload carries it). */
export function parseEventPayload(raw: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw badRequest('malformed_json', `the body is not valid JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw badRequest('invalid_payload', 'the body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

export function requireString(payload: Record<string, unknown>, field: string, code: string): string {
  const value = payload[field];
  if (typeof value !== 'string' || value.trim() === '') {
    throw badRequest(code, `the event has no "${field}"`, [{ field, problem: 'required non-empty string' }]);
  }
  if (value.length > 255) throw badRequest(code, `"${field}" is longer than 255 characters`, [{ field, problem: 'too long' }]);
  return value;
}
