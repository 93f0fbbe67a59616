// Harness for test/monitoring-script*.test.ts: runs scripts/monitoring.sh against a private native
// stack (temp state dir, random ports), and guarantees that every process it started is stopped.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { freePort } from './prom-tools.js';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SCRIPT = join(REPO, 'scripts/monitoring.sh');

/** Debian package of each command the script needs in native mode, for the failure message. */
const PACKAGES: Record<string, string> = {
  prometheus: 'prometheus',
  promtool: 'prometheus',
  'prometheus-alertmanager': 'prometheus-alertmanager',
  amtool: 'prometheus-alertmanager',
  'prometheus-node-exporter': 'prometheus-node-exporter',
  sqlite3: 'sqlite3',
  curl: 'curl',
  jq: 'jq',
  shellcheck: 'shellcheck',
};

export function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    if (!dir) return false;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Throws (failing the test, never skipping it) naming the apt-get line for what is missing. */
export function requireCommands(names: readonly string[]): void {
  const missing = names.filter((name) => !onPath(name));
  if (!missing.length) return;
  const packages = [...new Set(missing.map((name) => PACKAGES[name] ?? name))];
  throw new Error(`missing on PATH: ${missing.join(', ')}; install with: apt-get install ${packages.join(' ')}`);
}

/**
 * A directory of links to every command on PATH except `names`, to use as PATH: the script then
 * runs as on a machine where those commands are not installed.
 */
export function pathWithout(names: readonly string[], dir: string): string {
  mkdirSync(dir, { recursive: true });
  const seen = new Set(names);
  for (const entry of (process.env.PATH ?? '').split(delimiter)) {
    if (!entry || !existsSync(entry)) continue;
    for (const name of readdirSync(entry)) {
      if (seen.has(name)) continue;
      seen.add(name);
      symlinkSync(join(entry, name), join(dir, name));
    }
  }
  return dir;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { cwd: REPO, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} timed out after ${options.timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Shows a failed run's output in the assertion message. */
export function describeRun(result: RunResult): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

const NATIVE_COMPONENTS = ['prometheus', 'alertmanager', 'node-exporter', 'hookwatch'] as const;
export type NativeComponent = (typeof NATIVE_COMPONENTS)[number];

/** A private native stack: its own temp directory, ports and .env. */
export class NativeStack {
  readonly dir = mkdtempSync(join(tmpdir(), 'hookwatch-monitoring-script-'));
  readonly stateDir = join(this.dir, 'state');
  readonly envFile = join(this.dir, 'env');
  readonly backupDir = join(this.dir, 'backups');
  readonly reportDir = join(this.dir, 'reports');
  readonly secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  /** Every pid the stack has had, so that cleanup can stop them whatever happened. */
  private readonly pids = new Set<number>();

  private constructor(readonly ports: Record<'hookwatch' | 'prometheus' | 'alertmanager' | 'nodeExporter', number>) {}

  static async create(): Promise<NativeStack> {
    return new NativeStack({ hookwatch: await freePort(), prometheus: await freePort(), alertmanager: await freePort(), nodeExporter: await freePort() });
  }

  get env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env };
    // Nothing of the developer's environment may leak into the stack under test.
    for (const key of Object.keys(env)) {
      if (key.startsWith('MONITORING_') || key.startsWith('WEBHOOK_SECRET_') || key === 'ADMIN_TOKEN') delete env[key];
    }
    return {
      ...env,
      MONITORING_MODE: 'native',
      MONITORING_STATE_DIR: this.stateDir,
      MONITORING_ENV_FILE: this.envFile,
      MONITORING_SECRETS_DIR: join(this.dir, 'secrets'),
      MONITORING_BACKUP_DIR: this.backupDir,
      MONITORING_REPORT_DIR: this.reportDir,
      MONITORING_HOOKWATCH_PORT: String(this.ports.hookwatch),
      MONITORING_PROMETHEUS_PORT: String(this.ports.prometheus),
      MONITORING_ALERTMANAGER_PORT: String(this.ports.alertmanager),
      MONITORING_NODE_EXPORTER_PORT: String(this.ports.nodeExporter),
      MONITORING_SCRAPE_INTERVAL: '1s',
      MONITORING_WAIT_TIMEOUT: '90',
      MONITORING_SKIP_DASHBOARDS: '1',
      WEBHOOK_SECRET_SHOP: this.secret,
    };
  }

  async script(args: readonly string[], options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
    const result = await run(SCRIPT, args, { env: { ...this.env, ...options.env }, input: options.input, timeoutMs: options.timeoutMs ?? 120_000 });
    this.rememberPids();
    return result;
  }

  pidOf(component: NativeComponent): number | undefined {
    const file = join(this.stateDir, 'run', `${component}.pid`);
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  rememberPids(): void {
    for (const component of NATIVE_COMPONENTS) {
      const pid = this.pidOf(component);
      if (pid !== undefined) this.pids.add(pid);
    }
  }

  alive(pid: number): boolean {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  envValue(key: string): string {
    const line = readFileSync(this.envFile, 'utf8').split('\n').find((l) => l.startsWith(`${key}=`));
    return line ? line.slice(key.length + 1) : '';
  }

  url(component: 'hookwatch' | 'prometheus' | 'alertmanager', path: string): string {
    return `http://127.0.0.1:${this.ports[component]}${path}`;
  }

  /** POSTs a Standard-Webhooks-signed event to /webhooks/shop; returns hookwatch's id for it. */
  async sendEvent(type: string): Promise<string> {
    const id = `msg_script_${Date.now().toString(36)}`;
    const body = JSON.stringify({ type, timestamp: new Date().toISOString(), data: { id: 'script-test' } });
    const now = new Date();
    const response = await fetch(this.url('hookwatch', '/webhooks/shop'), {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': new Webhook(this.secret).sign(id, now, body),
      },
    });
    const answer = (await response.json()) as { id?: string };
    if (response.status !== 202 || !answer.id) throw new Error(`POST /webhooks/shop: ${response.status} ${JSON.stringify(answer)}`);
    return answer.id;
  }

  async adminGet(path: string): Promise<Response> {
    return fetch(this.url('hookwatch', `/api/v1${path}`), { headers: { authorization: `Bearer ${this.envValue('ADMIN_TOKEN')}` } });
  }

  /** Instant query; `time` in seconds. */
  async query(expr: string, time?: number): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
    const params = new URLSearchParams({ query: expr });
    if (time !== undefined) params.set('time', String(time));
    const response = await fetch(this.url('prometheus', `/api/v1/query?${params}`));
    const body = (await response.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    if (body.status !== 'success') throw new Error(`query ${expr}: ${JSON.stringify(body)}`);
    return body.data.result;
  }

  backups(): string[] {
    return existsSync(this.backupDir) ? readdirSync(this.backupDir).filter((f) => f.endsWith('.tar.gz')).map((f) => join(this.backupDir, f)) : [];
  }

  /** Stops everything the stack ever ran (reset, then any survivor by pid) and removes its files. */
  async destroy(): Promise<void> {
    this.rememberPids();
    if (existsSync(SCRIPT)) await this.script(['reset', '--yes'], { timeoutMs: 60_000 }).catch(() => undefined);
    for (const pid of this.pids) if (this.alive(pid)) process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while ([...this.pids].some((pid) => this.alive(pid)) && Date.now() < deadline) await sleep(100);
    for (const pid of this.pids) if (this.alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` returns a value (not undefined) or the time is up. */
export async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(250);
  }
}
