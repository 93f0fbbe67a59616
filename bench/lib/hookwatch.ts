import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hookwatchEnv, shippedServiceArgs } from '../receive.js';
import { startServer, type RunningServer } from './servers.js';

export const BENCH_ADMIN_TOKEN = 'bench-admin-token-0123456789';

/** hookwatch as `npm start` runs it, on a fresh data directory. */
export async function startHookwatch(core: number | null, extra: Record<string, string> = {}): Promise<RunningServer & { dataDir: string }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hookwatch-bench-'));
  const server = await startServer('hookwatch', shippedServiceArgs(), hookwatchEnv(dataDir, extra), core);
  return { ...server, dataDir };
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
