import { AsyncLocalStorage } from 'node:async_hooks';

/** What every log line of one request or one job carries, without passing it by hand. */
export interface LogContext {
  request_id?: string;
  source?: string;
  event_id?: string;
  event_type?: string;
  job_id?: number;
  endpoint?: string;
  delivery_id?: string;
}

const storage = new AsyncLocalStorage<LogContext>();

export function runWithContext<T>(context: LogContext, fn: () => T): T {
  return storage.run({ ...storage.getStore(), ...context }, fn);
}

/** Adds fields to the context of the current request or job (later log lines carry them). */
export function addToContext(fields: LogContext): void {
  const store = storage.getStore();
  if (store) Object.assign(store, fields);
}

export function currentContext(): LogContext | undefined {
  return storage.getStore();
}
