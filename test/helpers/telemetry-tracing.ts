import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { registerLoaderHook, startTracing, type Tracing } from '../../src/telemetry/tracing.js';

/**
 * What preload.ts does for the real process, with an in-memory exporter: registers the ESM
 * loader hook and starts tracing with HTTP and Express instrumentation. Must run before express
 * or the service are imported, so a test file using it imports them dynamically afterwards.
 */
export function bootstrapTestTracing(): { exporter: InMemorySpanExporter; tracing: Tracing } {
  const exporter = new InMemorySpanExporter();
  registerLoaderHook();
  const tracing = startTracing({ serviceName: 'hookwatch', environment: 'test', exporter, instrument: true });
  if (!tracing) throw new Error('tracing did not start');
  return { exporter, tracing };
}

export const spanId = (span: ReadableSpan): string => span.spanContext().spanId;
export const traceIdOf = (span: ReadableSpan): string => span.spanContext().traceId;
export const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;

/** True when `ancestor` is on the parent chain of `span`, within the given spans. */
export function descendsFrom(span: ReadableSpan, ancestor: ReadableSpan, spans: readonly ReadableSpan[]): boolean {
  const byId = new Map(spans.map((s) => [spanId(s), s]));
  let parent = parentOf(span);
  for (let depth = 0; parent && depth < 50; depth++) {
    if (parent === spanId(ancestor)) return true;
    parent = byId.get(parent) ? parentOf(byId.get(parent) as ReadableSpan) : undefined;
  }
  return false;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface PreloadedChild {
  proc: ChildProcess;
  url: string;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

/**
 * Starts the service as `npm run dev` does: `node --import tsx --import ./src/telemetry/preload.ts
 * src/main.ts`, so the preload's ESM hook and SDK bootstrap are what is tested.
 */
export async function spawnWithPreload(env: Record<string, string>, timeoutMs = 30_000): Promise<PreloadedChild> {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--import', './src/telemetry/preload.ts', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let buffered = '';
  proc.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start:\n${stdout.join('\n')}\n${stderr.join('')}`)), timeoutMs);
    proc.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        stdout.push(line);
        const match = /"message":"hookwatch listening on http:\/\/[^:]+:(\d+)"/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code}:\n${stdout.join('\n')}\n${stderr.join('')}`));
    });
  });
  return { proc, url: `http://127.0.0.1:${port}`, stdout, stderr, exited };
}
