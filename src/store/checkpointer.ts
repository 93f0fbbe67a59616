import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

// Runs in the worker thread: its own connection, checkpointing the WAL into the database file.
// A checkpoint fsyncs and can take a hundred milliseconds on a slow disk; on the main thread
// that pause landed on whichever request triggered it (measured: it doubled the cost per
// commit and set p99), here it only costs a core's idle time. On Linux, where niceness belongs to
// each thread, the thread runs 10 nicer than the process: where it shares a core with the main
// thread, the requests come first. (Elsewhere the call would renice the whole process.) Relative,
// so that a process already started nicer never gets a checkpoint thread above its own priority.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
if (process.platform === 'linux') {
  const os = require('node:os');
  // Lowering one's own priority needs no privilege; should it fail anyway, checkpoints still run,
  // only at the process's priority, so it is not reported as a checkpoint error.
  try { os.setPriority(Math.min(19, os.getPriority() + 10)); } catch {}
}
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 1000');
let failing = false;
const tick = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    if (failing) parentPort.postMessage({ error: null });
    failing = false;
  } catch (error) {
    failing = true;
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
};
const timer = setInterval(tick, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message === 'stop') { clearInterval(timer); tick(); db.close(); process.exit(0); }
});
`;

/**
 * How often the background thread copies the WAL into the database file. Under steady writes it
 * never quite catches up (a commit lands during each pass, whose fsync alone takes about 10 ms), so
 * the WAL file is started over from the main thread: the commit that finds the WAL at
 * AUTO_CHECKPOINT_PAGES checkpoints what the thread has not copied yet, and the next one restarts
 * the WAL and fsyncs its new header. Frequent passes keep that remainder small: at one pass a
 * second it was up to a second of writes, and those checkpoints stalled requests for 50–150 ms.
 */
export const CHECKPOINT_INTERVAL_MS = 250;

/** Checkpoints the WAL every `intervalMs` on a background thread. */
export class Checkpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private stopping: Promise<void> | null = null;
  private lastError: string | null = null;

  constructor(file: string, intervalMs = CHECKPOINT_INTERVAL_MS) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, driver, intervalMs } });
    this.worker.on('message', (message: { error?: string }) => { this.lastError = message.error ?? null; });
    this.worker.on('error', (error) => { this.lastError = error.message; });
    this.exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.unref();
  }

  get error(): string | null {
    return this.lastError;
  }

  /** Checkpoints one last time and ends the thread; safe to call more than once. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.worker.postMessage('stop');
      const timeout = setTimeout(() => void this.worker.terminate(), 5000);
      await this.exited;
      clearTimeout(timeout);
    })();
    return this.stopping;
  }
}
