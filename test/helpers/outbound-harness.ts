import http, { type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import request from 'supertest';
import type { Clock } from '../../src/clock.js';
import { ADMIN_TOKEN, startTestService, type TestService } from './service.js';

/** A clock the test moves by hand; the worker pool claims whatever is due at its time. */
export class TestClock implements Clock {
  constructor(private current = Date.UTC(2030, 0, 1, 12, 0, 0)) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
}

export interface Received {
  /** webhook-id */
  id: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The signature verified with the Standard Webhooks library against one of the receiver's secrets. */
  verified: boolean;
  /** How many answered requests with this webhook-id came before this one. */
  previous: number;
  status: number;
}

/** `holdBody`: the status line, headers and body are sent but the response never ends (held like 'hang'). */
export type Reply = { status: number; body?: string; headers?: Record<string, string>; delayMs?: number; holdBody?: boolean } | 'hang';
export type Behaviour = (request: Omit<Received, 'status'>) => Reply;

/**
 * A real HTTP endpoint on 127.0.0.1 that verifies every delivery's signature with the
 * `standardwebhooks` library and answers as its behaviour says.
 */
export class Receiver {
  readonly requests: Received[] = [];
  secrets: string[] = [];
  private readonly counts = new Map<string, number>();
  private readonly hanging = new Set<http.ServerResponse>();

  private constructor(private readonly server: Server, readonly url: string, public behaviour: Behaviour) {}

  static async start(behaviour: Behaviour = () => ({ status: 200, body: 'ok' }), path = '/hook'): Promise<Receiver> {
    let self: Receiver | null = null;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => self?.handle(req.headers, Buffer.concat(chunks).toString('utf8'), res));
    });
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    self = new Receiver(server, `http://127.0.0.1:${port}${path}`, behaviour);
    return self;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  private handle(headers: IncomingHttpHeaders, body: string, res: http.ServerResponse): void {
    const id = String(headers['webhook-id'] ?? '');
    const previous = this.counts.get(id) ?? 0;
    this.counts.set(id, previous + 1);
    const verified = this.secrets.some((secret) => {
      try {
        new Webhook(secret).verify(body, headers as Record<string, string>);
        return true;
      } catch {
        return false;
      }
    });
    const seen = { id, headers, body, verified, previous };
    const reply = this.behaviour(seen);
    if (reply === 'hang') {
      // A request never answered does not count as one the endpoint saw through.
      this.counts.set(id, previous);
      this.hanging.add(res);
      res.on('close', () => this.hanging.delete(res));
      this.requests.push({ ...seen, status: 0 });
      return;
    }
    this.requests.push({ ...seen, status: reply.status });
    const answer = () => {
      this.answered += 1;
      res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
      if (!reply.holdBody) {
        res.end(reply.body ?? '');
        return;
      }
      res.write(reply.body ?? '');
      this.hanging.add(res);
      res.on('close', () => this.hanging.delete(res));
    };
    if (reply.delayMs) setTimeout(answer, reply.delayMs);
    else answer();
  }

  /** Requests answered so far ('hang' ones excluded; one that held its body counts). */
  answered = 0;

  /** Requests held open right now (behaviour answered 'hang', or held its body). */
  get held(): number {
    return this.hanging.size;
  }

  /** Requests whose webhook-id is `id`. */
  for(id: string): Received[] {
    return this.requests.filter((r) => r.id === id);
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The service with the sending side's test settings; callers add or override variables. */
export function startOutboundService(env: Record<string, string> = {}, clock?: Clock): Promise<TestService> {
  return startTestService({ ALLOW_PRIVATE_DESTINATIONS: 'true', JOB_LEASE: '30s', ...env }, clock ? { clock } : {});
}

/** An admin API call with the bearer token. */
export function admin(t: TestService, method: 'get' | 'post' | 'patch' | 'delete', path: string) {
  return request(t.url)[method](path).set('authorization', `Bearer ${ADMIN_TOKEN}`);
}

export interface EndpointBody { id: string; secret: string; url: string; paused: boolean; disabled: boolean }

/** Registers an endpoint for the receiver and gives the receiver its secret. */
export async function registerEndpoint(t: TestService, receiver: Receiver, events: string[] = ['*'], extra: Record<string, unknown> = {}): Promise<EndpointBody> {
  const res = await admin(t, 'post', '/api/v1/webhooks').send({ url: receiver.url, events, description: 'test endpoint', ...extra });
  if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${JSON.stringify(res.body)}`);
  const body = res.body as EndpointBody;
  receiver.secrets.push(body.secret);
  return body;
}

export interface PublishedBody { id: string; event_id: string; duplicate: boolean; deliveries: { id: string; endpoint_id: string; status: string }[] }

export async function publish(t: TestService, type: string, data: unknown, id?: string): Promise<PublishedBody> {
  const res = await admin(t, 'post', '/api/v1/events').send(id ? { type, data, id } : { type, data });
  if (res.status !== 202 && res.status !== 200) throw new Error(`publish failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as PublishedBody;
}

/** True once the delivery's job is back in the queue (not running) or gone: safe to move the clock. */
export function settled(t: TestService, deliveryId: string, attempts: number): boolean {
  const delivery = t.service.store.deliveries.get(deliveryId);
  if (!delivery || delivery.attempts < attempts) return false;
  if (delivery.jobId === null) return true;
  const job = t.service.jobs.get(delivery.jobId);
  return !job || job.status !== 'running';
}
