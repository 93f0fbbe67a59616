import type { ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { storageFailure } from '../store/db.js';
import type { Logger } from '../telemetry/logger.js';
import { HttpError, type ErrorBody } from './errors.js';

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
}

/** Turns whatever a route threw into an HttpError; unknown errors become a logged 500. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  const parserError = error as BodyParserError;
  switch (parserError?.type) {
    case 'entity.too.large':
      return new HttpError(413, 'payload_too_large', `the body is larger than the limit of ${parserError.limit ?? '?'} bytes`);
    case 'entity.parse.failed':
      return new HttpError(400, 'malformed_json', 'the body is not valid JSON');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new HttpError(415, 'unsupported_encoding', parserError.message);
    case 'request.aborted':
      return new HttpError(400, 'request_aborted', 'the request was aborted by the client');
    default:
      if (parserError?.status && parserError.status >= 400 && parserError.status < 500) {
        return new HttpError(parserError.status, 'bad_request', parserError.message);
      }
      // Not this request's fault and not a bug: the sender should come back (webhook senders retry a 503).
      if (storageFailure(error)) {
        return new HttpError(503, 'store_unavailable', 'the store cannot save this right now (disk full, I/O error or closed database); retry later', undefined, { 'Retry-After': '30' });
      }
      return new HttpError(500, 'internal_error', 'an unexpected error occurred');
  }
}

/** The one place that maps errors to the JSON error shape. */
export function errorHandler(logger: Logger) {
  return (error: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const httpError = toHttpError(error);
    if (httpError.status >= 500) {
      logger.error('request failed', { request_id: req.requestId, method: req.method, path: req.route?.path ?? 'unmatched', error: (error as Error)?.stack ?? String(error) });
    }
    writeJsonError(res, httpError);
  };
}

/** Answers with the JSON error shape every route returns, unless an answer has already started. */
export function writeJsonError(res: ServerResponse, httpError: HttpError): void {
  if (res.headersSent) return;
  const body: ErrorBody = { error: httpError.code, message: httpError.message };
  if (httpError.details) body.details = httpError.details;
  writeJson(res, httpError.status, body, httpError.headers);
}

/** A JSON answer written straight to the response (the ingest route has no Express `res.json`). */
export function writeJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function notFoundHandler(req: Request, _res: Response, next: NextFunction): void {
  next(new HttpError(404, 'not_found', `no route for ${req.method} ${req.path}`));
}
