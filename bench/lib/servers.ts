import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface RunningServer {
  name: string;
  proc: ChildProcess;
  port: number;
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a server as its own process, pinned to `core` when pinning is possible, and waits
 * for the port it prints (the baselines print "listening <port>", hookwatch logs its URL).
 */
export async function startServer(name: string, args: string[], env: Record<string, string>, core: number | null): Promise<RunningServer> {
  const command = core === null ? process.execPath : 'taskset';
  const argv = core === null ? args : ['-c', String(core), process.execPath, ...args];
  const proc = spawn(command, argv, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = '';
  let errors = '';
  proc.stderr?.on('data', (chunk: Buffer) => { errors += chunk.toString(); });
  const port = await new Promise<number>((resolve, reject) => {
    // One that never starts is killed, and reported only once it has exited: the caller then deletes its data directory.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill('SIGKILL');
    }, 60_000);
    proc.stdout?.on('data', (chunk: Buffer) => {
      if (seen.length < 10_000) seen += chunk.toString();
      const match = /listening (\d+)/.exec(seen) ?? /listening on http:\/\/[^:]+:(\d+)/.exec(seen);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} ${timedOut ? 'did not start within 60 s' : `exited with ${code}`}:\n${seen}\n${errors}`));
    });
  });
  // Logs are part of the work measured; drain them so the pipe never blocks the server.
  proc.stdout?.resume();
  return {
    name, proc, port, url: `http://127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
