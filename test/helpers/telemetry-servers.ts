import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** Local stand-ins for the telemetry backends: an OTLP/HTTP trace receiver and a Loki push API. */

async function listen(server: http.Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  return (server.address() as AddressInfo).port;
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  scope: string;
  resource: Record<string, string>;
}

interface OtlpAnyValue { stringValue?: string; intValue?: string | number; boolValue?: boolean }
interface OtlpKeyValue { key: string; value: OtlpAnyValue }
interface OtlpTraces {
  resourceSpans?: {
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: { scope?: { name?: string }; spans?: { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number }[] }[];
  }[];
}

/** Accepts OTLP/HTTP JSON trace exports (what @opentelemetry/exporter-trace-otlp-http sends). */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly requests: { path: string; contentType: string }[] = [];
  /** Every export as received, to search for what must never leave the process. */
  readonly bodies: string[] = [];
  private readonly server = http.createServer((req, res) => void this.handle(req, res));
  port = 0;

  async start(): Promise<this> {
    this.port = await listen(this.server);
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    this.requests.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '' });
    this.bodies.push(body);
    const traces = JSON.parse(body) as OtlpTraces;
    for (const resourceSpans of traces.resourceSpans ?? []) {
      const resource: Record<string, string> = {};
      for (const { key, value } of resourceSpans.resource?.attributes ?? []) resource[key] = String(value.stringValue ?? value.intValue ?? value.boolValue ?? '');
      for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
        for (const span of scopeSpans.spans ?? []) {
          this.spans.push({ traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId ?? '', name: span.name, kind: span.kind, scope: scopeSpans.scope?.name ?? '', resource });
        }
      }
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface LokiStream {
  stream: Record<string, string>;
  values: [string, string, Record<string, string>?][];
}

export type LokiMode = 'accept' | 'refuse' | 'hang';

/**
 * A Loki push endpoint on a fixed port that can be switched between answering (204, recording
 * the streams), refusing connections (nothing listens on the port) and hanging (the connection
 * is accepted and never answered).
 */
export class FakeLoki {
  readonly streams: LokiStream[] = [];
  readonly paths: string[] = [];
  private readonly server = http.createServer((req, res) => void this.handle(req, res));
  private readonly sockets = new Set<Socket>();
  private mode: LokiMode = 'accept';
  port = 0;

  constructor() {
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async start(): Promise<this> {
    this.port = await listen(this.server);
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Every line received so far, parsed, with the labels of its stream. */
  get lines(): { labels: Record<string, string>; line: string; metadata: Record<string, string> | undefined }[] {
    return this.streams.flatMap((stream) => stream.values.map(([, line, metadata]) => ({ labels: stream.stream, line, metadata })));
  }

  async switchTo(mode: LokiMode): Promise<void> {
    if (mode === this.mode) return;
    if (this.mode === 'refuse') await listen(this.server, this.port);
    this.mode = mode;
    if (mode === 'refuse') await this.close();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.mode === 'hang') return;
    const body = await readBody(req);
    this.paths.push(req.url ?? '');
    const push = JSON.parse(body) as { streams: LokiStream[] };
    this.streams.push(...push.streams);
    res.writeHead(204);
    res.end();
  }

  private async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  async stop(): Promise<void> {
    if (this.mode !== 'refuse') await this.close();
  }
}
