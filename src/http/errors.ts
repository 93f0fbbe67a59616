/** An error that knows its HTTP status; one handler maps it to the JSON shape every route returns. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: readonly unknown[],
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface ErrorBody {
  error: string;
  message: string;
  details?: readonly unknown[];
}

export const badRequest = (code: string, message: string, details?: readonly unknown[]) =>
  new HttpError(400, code, message, details);
export const notFound = (what: string) => new HttpError(404, 'not_found', `${what} not found`);
