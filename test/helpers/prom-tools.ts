// Helpers for the monitoring tests: find and run the real Prometheus tools (Debian packages),
// start Prometheus / Alertmanager on 127.0.0.1, and read the repository's monitoring files.
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

const INSTALL_HINT: Record<string, string> = {
  promtool: "apt-get install prometheus",
  prometheus: "apt-get install prometheus",
  amtool: "apt-get install prometheus-alertmanager",
  "prometheus-alertmanager": "apt-get install prometheus-alertmanager",
  "docker-compose": "apt-get install docker-compose",
};

/** Absolute path of a required binary; throws (failing the test, never skipping) when missing. */
export function requireBinary(name: string): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  const hint = INSTALL_HINT[name] ?? "install it";
  throw new Error(`${name} not found on PATH: this test needs the real tool (${hint}; or all at once: apt-get install prometheus prometheus-alertmanager docker-compose)`);
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to completion and collect its output. */
export function run(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

const tempDirs: string[] = [];
process.once("exit", () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory under the system temp dir, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `hookwatch-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

export function readRepoFile(path: string): string {
  return readFileSync(join(REPO, path), "utf8");
}

export function readRepoYaml<T>(path: string): T {
  return parse(readRepoFile(path)) as T;
}

const handedOut = new Set<number>();

/**
 * A TCP port free on 127.0.0.1 at the time of the call, and never one this process was given
 * before: the kernel can hand the same free port out twice in a row, and a test that asked for a
 * port per process then started two of them on one port (seen in CI: hookwatch and node-exporter).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await unusedPort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

function unusedPort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolvePromise(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Thrown by a waitFor probe to stop waiting at once (e.g. the process being waited for exited). */
export class GiveUp extends Error {}

/**
 * Poll `probe` until it returns a value (not undefined). Gives up after `attempts` tries, with the
 * last error, so that a process that never becomes ready fails the test instead of hanging it.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, attempts = 150, intervalMs = 200): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      last = error;
    }
    await sleep(intervalMs);
  }
  throw new Error(`${what} did not become ready${last instanceof Error ? `: ${last.message}` : ""}`);
}

export interface Daemon {
  url: string;
  process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Start a long-running process and wait until `readyPath` on `url` answers 200. */
export async function startDaemon(command: string, args: readonly string[], url: string, readyPath: string, env?: NodeJS.ProcessEnv): Promise<Daemon> {
  const child = spawn(command, args, { env: env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.setEncoding("utf8").on("data", (c: string) => (output += c));
  child.stderr?.setEncoding("utf8").on("data", (c: string) => (output += c));
  let exited = false;
  const exitedPromise = new Promise<void>((r) => child.on("exit", () => ((exited = true), r())));
  const stop = async () => {
    if (!exited) {
      child.kill("SIGTERM");
      await exitedPromise;
    }
  };
  try {
    await waitFor(`${command} at ${url}`, async () => {
      if (exited) throw new GiveUp(`${command} exited:\n${output}`);
      const res = await fetch(`${url}${readyPath}`);
      return res.ok ? true : undefined;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, process: child, output: () => output, stop };
}

export async function startPrometheus(configFile: string, dataDir: string, port: number): Promise<Daemon> {
  const url = `http://127.0.0.1:${port}`;
  return startDaemon(
    requireBinary("prometheus"),
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--web.enable-lifecycle",
      "--web.enable-admin-api",
      "--enable-feature=exemplar-storage,expand-external-labels",
    ],
    url,
    "/-/ready",
  );
}

export async function startAlertmanager(configFile: string, dataDir: string, port: number, clusterPort: number): Promise<Daemon> {
  const url = `http://127.0.0.1:${port}`;
  return startDaemon(
    requireBinary("prometheus-alertmanager"),
    [
      `--config.file=${configFile}`,
      `--storage.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--cluster.listen-address=127.0.0.1:${clusterPort}`,
    ],
    url,
    "/-/ready",
  );
}

// ---- shapes of the repository's monitoring files (only the fields the tests read) ----

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RecordingRule {
  record: string;
  expr: string;
}
export interface RuleFile<R> {
  groups: Array<{ name: string; rules: R[] }>;
}

export function alertRules(): AlertRule[] {
  return readRepoYaml<RuleFile<AlertRule>>("monitoring/prometheus/rules/alerts.yml").groups.flatMap((g) => g.rules);
}

export function recordingRules(): RecordingRule[] {
  return readRepoYaml<RuleFile<RecordingRule>>("monitoring/prometheus/rules/recording.yml").groups.flatMap((g) => g.rules);
}
