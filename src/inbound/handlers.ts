import { EVENT_PATTERN, typeMatches } from '../event-types.js';

/** What a handler is given: ids to be idempotent by, the type, and the parsed payload. */
export interface InboundEvent {
  /** hookwatch's id for the stored event (evt_…). */
  id: string;
  /** The sender's id (Stripe's `id`, or `webhook-id`): the same on every redelivery. */
  eventId: string;
  source: string;
  type: string;
  payload: unknown;
  requestId: string | null;
  receivedAt: number;
  /** 1 on the first processing run, then 2, 3, … */
  attempt: number;
  /** Aborted once the run passes JOB_TIMEOUT and no longer waits for the handler: pass it to fetch and the like. */
  signal: AbortSignal;
}

export type EventHandler = (event: InboundEvent) => Promise<void> | void;

/** Thrown by a handler when retrying cannot help; the job goes to the dead-letter queue. */
export class PermanentError extends Error {
  override readonly name = 'PermanentError';
}

/** Thrown (or any other error) when the handler may succeed later; the job is retried with backoff. */
export class TemporaryError extends Error {
  override readonly name = 'TemporaryError';
}

export interface RegisteredHandler {
  name: string;
  pattern: string;
  handle: EventHandler;
}

/**
 * Maps event types to handlers. Several handlers may match one type (fan-out): exact type,
 * a prefix wildcard such as `invoice.*`, or `*` for every event.
 */
export class HandlerRegistry {
  private readonly handlers: RegisteredHandler[] = [];

  register(pattern: string, name: string, handle: EventHandler): this {
    if (!EVENT_PATTERN.test(pattern)) throw new Error(`invalid handler pattern "${pattern}"`);
    if (this.handlers.some((h) => h.name === name)) throw new Error(`a handler named "${name}" is already registered`);
    this.handlers.push({ name, pattern, handle });
    return this;
  }

  match(type: string): RegisteredHandler[] {
    return this.handlers.filter(({ pattern }) => typeMatches(pattern, type));
  }

  has(name: string): boolean {
    return this.handlers.some((h) => h.name === name);
  }

  get size(): number {
    return this.handlers.length;
  }
}
