import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, startServer, type RunningServer } from './servers.js';

export const BENCH_ADMIN_TOKEN = 'bench-admin-token-0123456789';
export const BENCH_SECRET = 'whsec_bench_secret_0123456789abcdef';

/** The command `npm start` runs after its build, so the service measured is hookwatch exactly as shipped. */
export function shippedServiceArgs(): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const words = (pkg.scripts.start ?? 'node dist/main.js').split(/\s+/).filter(Boolean);
  if (words[0] !== 'node') throw new Error(`npm start is not a plain node command: ${pkg.scripts.start}`);
  return words.slice(1);
}

export function hookwatchEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOST: '127.0.0.1', PORT: '0', DATA_DIR: dataDir, ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
    STRIPE_WEBHOOK_SECRET: BENCH_SECRET, RATE_LIMIT_MAX: '10000000', NODE_ENV: 'production', ...extra,
  };
}

/**
 * hookwatch as `npm start` runs it, on a fresh data directory that stop() deletes: the receive
 * and memory phases leave databases of a hundred megabytes and more each.
 */
export async function startHookwatch(core: number | null, extra: Record<string, string> = {}): Promise<RunningServer & { dataDir: string }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hookwatch-bench-'));
  try {
    const server = await startServer('hookwatch', shippedServiceArgs(), hookwatchEnv(dataDir, extra), core);
    return {
      ...server,
      dataDir,
      async stop() {
        await server.stop();
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

export async function health(url: string): Promise<{ checks: { queue: { pending: number } } }> {
  const res = await fetch(`${url}/health`);
  return (await res.json()) as { checks: { queue: { pending: number } } };
}

export async function admin<T>(url: string, method: string, route: string, body?: unknown): Promise<T> {
  const res = await fetch(`${url}/api/v1${route}`, {
    method,
    headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
