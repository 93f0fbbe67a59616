/**
 * Process bootstrap for tracing, loaded before the application:
 *
 *   node --import ./dist/telemetry/preload.js dist/main.js          (npm start)
 *   tsx --import ./src/telemetry/preload.ts src/main.ts              (npm run dev)
 *
 * The package is ESM, and an ESM `import` is only patchable through a loader hook registered
 * before the importing module graph is loaded; express and http must also be patched before the
 * app imports them. Both are only possible here, not from main.ts, whose imports are resolved
 * before its first line runs.
 *
 * With OTEL_EXPORTER_OTLP_ENDPOINT unset this registers nothing at all: no hook, no provider.
 * An invalid configuration is left to main.ts, which stops with a clear message.
 */
import { loadConfig, type Config } from '../config.js';
import { registerLoaderHook, startTracing } from './tracing.js';

let config: Config | null = null;
try {
  config = loadConfig();
} catch {
  config = null;
}

if (config?.telemetry.otlpEndpoint) {
  registerLoaderHook();
  startTracing({
    serviceName: config.telemetry.serviceName,
    environment: config.telemetry.environment,
    endpoint: config.telemetry.otlpEndpoint,
    instrument: true,
  });
}
