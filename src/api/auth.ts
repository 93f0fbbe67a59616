import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { HttpError } from '../http/errors.js';

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** Requires `Authorization: Bearer <ADMIN_TOKEN>`; compares digests in constant time. */
export function requireAdmin(token: string) {
  const expected = digest(token);
  return (req: Request, _res: Response, next: NextFunction): void => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      next(new HttpError(401, 'unauthorized', 'send Authorization: Bearer <ADMIN_TOKEN>', undefined, { 'WWW-Authenticate': 'Bearer' }));
      return;
    }
    if (!timingSafeEqual(digest(match[1] ?? ''), expected)) {
      next(new HttpError(401, 'unauthorized', 'the bearer token is not valid', undefined, { 'WWW-Authenticate': 'Bearer' }));
      return;
    }
    next();
  };
}
