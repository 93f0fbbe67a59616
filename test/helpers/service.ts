import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { loadConfig } from '../../src/config.js';
import { createService, type Service, type ServiceOptions } from '../../src/service.js';
import { createLogger } from '../../src/telemetry/logger.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const STRIPE_SECRET = 'whsec_test_stripe_secret_for_hookwatch';
export const DEMO_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

export function tempDir(prefix = 'hookwatch-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Log lines the service wrote, parsed, for assertions on what was logged. */
export class LogCapture extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      this.raw.push(line);
      this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    callback();
  }
  find(message: string): Record<string, unknown>[] {
    return this.lines.filter((line) => line.message === message);
  }
}

export interface TestService {
  service: Service;
  logs: LogCapture;
  dataDir: string;
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Builds the real service on a temp SQLite file, listening on 127.0.0.1 on a free port. */
export async function startTestService(env: Record<string, string> = {}, options: ServiceOptions = {}): Promise<TestService> {
  const dataDir = env.DATA_DIR ?? tempDir();
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    ADMIN_TOKEN,
    STRIPE_WEBHOOK_SECRET: STRIPE_SECRET,
    WEBHOOK_SECRET_DEMO: DEMO_SECRET,
    JOB_POLL_INTERVAL: '20ms',
    JOB_BACKOFF_BASE: '10ms',
    JOB_BACKOFF_MAX: '50ms',
    SHUTDOWN_TIMEOUT: '2s',
    ...env,
  });
  const logs = new LogCapture();
  const logger = options.logger ?? createLogger({ level: 'debug', service: 'hookwatch', environment: 'test', stream: logs });
  const service = await createService(config, { defaultMetrics: false, ...options, logger });
  service.start();
  const server = createServer(service.app).listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    service,
    logs,
    dataDir,
    server,
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await service.stop();
    },
  };
}

/** Polls until check returns a value that is not undefined/false, or fails after the bound. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
