import { createServer, type Server } from 'node:http';

/** A local endpoint that answers every delivery with 200 (or what `status` says) and records arrivals by webhook-id. */
export class Sink {
  readonly arrivals = new Map<string, number>();
  count = 0;
  private server: Server | null = null;
  port = 0;

  constructor(private readonly status: (path: string, n: number) => number = () => 200) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        this.count += 1;
        const id = req.headers['webhook-id'];
        if (typeof id === 'string' && !this.arrivals.has(id)) this.arrivals.set(id, performance.now());
        res.writeHead(this.status(req.url ?? '/', this.count)).end('ok');
      });
    });
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  url(path = '/'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
