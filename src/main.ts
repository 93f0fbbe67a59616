import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig, type Config } from './config.js';
import type { HandlerRegistry } from './inbound/handlers.js';
import { writeJsonError } from './http/error-handler.js';
import { HttpError } from './http/errors.js';
import { listenUrl } from './http/listen-url.js';
import { requestIdOf } from './http/request-id.js';
import { createService } from './service.js';
import { StoreOpenError } from './store/store.js';
import { outageLogSink, shutdownLogShipping } from './telemetry/logger.js';
import { ensureTracing } from './telemetry/tracing.js';

interface HandlersModule {
  register(registry: HandlerRegistry): void | Promise<void>;
}

async function loadHandlers(config: Config): Promise<((registry: HandlerRegistry) => Promise<void>) | undefined> {
  if (!config.handlersModule) return undefined;
  let loaded: Partial<HandlersModule>;
  try {
    loaded = (await import(pathToFileURL(config.handlersModule).href)) as Partial<HandlersModule>;
  } catch (error) {
    throw new ConfigError('HANDLERS_MODULE', `cannot load ${config.handlersModule}: ${(error as Error).message}`);
  }
  if (typeof loaded.register !== 'function') {
    throw new ConfigError('HANDLERS_MODULE', `${config.handlersModule} does not export a register(registry) function`);
  }
  const register = loaded.register;
  return async (registry) => { await register(registry); };
}

async function main(): Promise<void> {
  // A ConfigError reaches the handler at the bottom, which names the variable and exits 1.
  const config = loadConfig();
  const registerHandlers = await loadHandlers(config);
  const service = await createService(config, { registerHandlers }).catch((error: unknown) => {
    throw error instanceof StoreOpenError ? new ConfigError('DATA_DIR', `cannot keep the database in ${config.dataDir}: ${error.message}`) : error;
  });
  const { logger } = service;
  // Normally started by the preload (npm start); started here, without HTTP/Express spans, when it was not.
  const { tracing, late } = ensureTracing(config.telemetry);
  tracing?.reportOutagesTo(outageLogSink(logger));
  if (late) {
    logger.warn('tracing started without the preload: only hookwatch\'s own spans are recorded; start with node --import ./dist/telemetry/preload.js for HTTP and Express spans');
  }
  service.start();

  let shuttingDown = false;
  // Requests under way (their bodies may still be arriving): shutdown waits for them before the store closes.
  let inFlight = 0;
  let lastRequestDone: (() => void) | null = null;
  const requestDone = () => {
    inFlight -= 1;
    if (inFlight === 0) lastRequestDone?.();
  };
  // server.close() stops new connections and closes idle ones, but a connection busy when SIGTERM
  // came stays open: a request arriving on it afterwards is turned away, and the connection closed,
  // rather than accepted while the workers drain and the store closes.
  // A body that trickles in holds its buffered (possibly inflated) bytes and a connection until
  // it is whole: Node's default lets that last 5 minutes, so a few kilobytes of compressed,
  // never-finished bodies could pin a gigabyte. Requests get REQUEST_TIMEOUT (30 s) to arrive,
  // checked often enough for that to hold.
  const server = createServer({
    requestTimeout: config.requestTimeoutMs,
    headersTimeout: Math.min(config.requestTimeoutMs, 20_000),
    connectionsCheckingInterval: Math.max(250, Math.min(5000, config.requestTimeoutMs / 4)),
  }, (req, res) => {
    if (!shuttingDown) {
      inFlight += 1;
      res.once('close', requestDone);
      service.app(req, res);
      return;
    }
    writeJsonError(res, new HttpError(503, 'shutting_down', 'the service is shutting down; send again shortly', undefined, {
      'Retry-After': '5', Connection: 'close', 'X-Request-ID': requestIdOf(req.headers['x-request-id']),
    }));
  }).listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (error) => reject(listenError(error, config)));
  });
  const { port } = server.address() as AddressInfo;
  logger.info(`hookwatch listening on ${listenUrl(config.host, port)}`, {
    port,
    host: config.host,
    data_dir: config.dataDir,
    sources: [...(config.stripe ? ['stripe'] : []), ...config.sources.keys()],
  });
  if (config.adminTokenGenerated) {
    // Printed once, to the terminal only, so a first-time user can call the admin API.
    process.stderr.write(`hookwatch: ADMIN_TOKEN is not set; this run's admin token is ${config.adminToken}\n`);
  }

  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info('shutting down', { signal, deadline_ms: config.shutdownTimeoutMs });
    // One deadline for all of it: requests under way, then running jobs get what is left.
    const deadline = Date.now() + config.shutdownTimeoutMs;
    const remaining = () => Math.max(0, deadline - Date.now());
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // A request already under way is served (its 202 needs the store), within the same deadline.
    if (inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => { lastRequestDone = resolve; }),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, remaining()); }),
      ]);
      clearTimeout(timer);
    }
    const { unfinished } = await service.stop(remaining());
    server.closeAllConnections();
    await closed;
    logger.info('stopped', { unfinished_jobs_released: unfinished });
    // Buffered spans and log lines go out before exit; each is bounded, a dead backend cannot hold the exit.
    await tracing?.shutdown().catch(() => undefined);
    await shutdownLogShipping(logger);
    logger.on('finish', () => process.exit(0));
    logger.end();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

const PORT_FAILURES = ['EADDRINUSE', 'EACCES'];
const HOST_FAILURES = ['ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'EAI_NONAME'];

/** A failure to listen, blamed on the setting that caused it. */
function listenError(error: NodeJS.ErrnoException, config: Config): Error {
  const blamed = PORT_FAILURES.includes(error.code ?? '') ? 'PORT' : HOST_FAILURES.includes(error.code ?? '') ? 'HOST' : null;
  return blamed ? new ConfigError(blamed, `cannot listen on ${config.host}:${config.port}: ${error.message}`) : error;
}

main().catch((error: unknown) => {
  const message = error instanceof ConfigError ? `invalid configuration: ${error.message}` : (error as Error)?.stack ?? String(error);
  process.stderr.write(`hookwatch: ${message}\n`);
  process.exit(1);
});
