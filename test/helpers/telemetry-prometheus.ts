import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './prom-tools.js';

/** A real Prometheus (Debian's package) on 127.0.0.1, with a temporary config and TSDB. */
export interface RunningPrometheus {
  url: string;
  output: string[];
  query<T>(apiPath: string, params: Record<string, string>): Promise<T>;
  stop(): Promise<void>;
}

function findPrometheus(): string {
  for (const candidate of ['/usr/bin/prometheus', '/usr/local/bin/prometheus']) {
    if (fs.existsSync(candidate)) return candidate;
  }
  const which = spawnSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' });
  const found = which.stdout.trim();
  if (which.status === 0 && found) return found;
  throw new Error('prometheus is not installed; this test runs a real Prometheus: apt-get install prometheus');
}

export async function startPrometheus(target: string, options: { job?: string; features?: string[] } = {}): Promise<RunningPrometheus> {
  const binary = findPrometheus();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hookwatch-prometheus-'));
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(config, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    `  - job_name: ${options.job ?? 'hookwatch'}`,
    '    static_configs:',
    `      - targets: ["${target}"]`,
    '',
  ].join('\n'));
  const port = await freePort();
  const args = [
    `--config.file=${config}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    ...(options.features?.length ? [`--enable-feature=${options.features.join(',')}`] : []),
  ];
  const proc: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  proc.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
  proc.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`prometheus exited with ${proc.exitCode}:\n${output.join('')}`);
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`prometheus did not become ready:\n${output.join('')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  return {
    url,
    output,
    async query<T>(apiPath: string, params: Record<string, string>): Promise<T> {
      const response = await fetch(`${url}${apiPath}?${new URLSearchParams(params).toString()}`);
      const body = (await response.json()) as { status: string; data: T; error?: string };
      if (body.status !== 'success') throw new Error(`${apiPath}: ${body.error ?? response.status}`);
      return body.data;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
