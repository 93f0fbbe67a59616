import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { runWithContext } from '../telemetry/context.js';

// A caller's id is reused only when it is short and plain, so it cannot inject into logs.
const ACCEPTABLE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

declare module 'express-serve-static-core' {
  interface Request {
    requestId: string;
  }
}

/** Takes X-Request-ID from the request or makes one, echoes it, and puts it in the log context. */
export function requestId(req: Request, res: Response, next: NextFunction): void {
  const given = req.get('x-request-id');
  const id = given && ACCEPTABLE_ID.test(given) ? given : randomUUID();
  req.requestId = id;
  res.setHeader('X-Request-ID', id);
  runWithContext({ request_id: id }, next);
}
