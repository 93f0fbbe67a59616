import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

/** Called with the duration of every timed store call; the metrics facade listens. */
export type QueryTimer = (operation: string, seconds: number) => void;

// Each entry runs once, in order, inside a transaction; the index is the schema version.
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE events (
     id TEXT PRIMARY KEY,
     source TEXT NOT NULL,
     event_id TEXT NOT NULL,
     type TEXT NOT NULL,
     payload TEXT NOT NULL,
     request_id TEXT,
     received_at INTEGER NOT NULL,
     status TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     processed_at INTEGER,
     last_error TEXT
   );
   CREATE INDEX events_by_time ON events(received_at, id);
   CREATE INDEX events_by_source_id ON events(source, event_id);
   CREATE TABLE idempotency_keys (
     source TEXT NOT NULL,
     key TEXT NOT NULL,
     event_pk TEXT NOT NULL,
     expires_at INTEGER NOT NULL,
     PRIMARY KEY (source, key)
   ) WITHOUT ROWID;
   CREATE INDEX idempotency_by_expiry ON idempotency_keys(expires_at);
   CREATE TABLE jobs (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     queue TEXT NOT NULL,
     kind TEXT NOT NULL,
     ref TEXT NOT NULL,
     payload TEXT,
     status TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     max_attempts INTEGER NOT NULL,
     run_at INTEGER NOT NULL,
     lease_owner TEXT,
     lease_expires_at INTEGER,
     last_error TEXT,
     request_id TEXT,
     trace_context TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX jobs_due ON jobs(queue, status, run_at, id);
   CREATE TABLE handler_runs (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     event_pk TEXT NOT NULL,
     attempt INTEGER NOT NULL,
     handler TEXT NOT NULL,
     outcome TEXT NOT NULL,
     error TEXT,
     duration_ms REAL NOT NULL,
     at INTEGER NOT NULL
   );
   CREATE INDEX handler_runs_by_event ON handler_runs(event_pk, id);`,
  // Listing by source pages by time; (source, event_id) put every insert on a random page.
  `DROP INDEX events_by_source_id;
   CREATE INDEX events_by_source_time ON events(source, received_at, id);`,
  // The attempt a job last started (see SqliteJobQueue's reclaim): a claim alone is not a run.
  `ALTER TABLE jobs ADD COLUMN started_attempt INTEGER NOT NULL DEFAULT 0;`,
  // Written to, and emptied again, only while writes fail (see GroupCommit's probe).
  `CREATE TABLE store_probe (id INTEGER PRIMARY KEY, pad BLOB NOT NULL);`,
];

/**
 * While the store cannot write, a small write is tried this often: without it only new traffic
 * could show that the store writes again, and a load balancer that took the instance out of
 * rotation on its unhealthy /health would send none.
 */
const PROBE_INTERVAL_MS = 5000;

/**
 * The WAL length in pages at which a commit on the main thread checkpoints and so lets the WAL start
 * over (see CHECKPOINT_INTERVAL_MS). Each time costs the requests in flight a stall: two fsyncs and
 * whatever the background thread had not copied yet. At the receive benchmark's ~11,000 pages a
 * second, 20,000 made that every 2 s; 40,000 (a WAL file of about 160 MB) every 4 s.
 */
export const AUTO_CHECKPOINT_PAGES = 40_000;
const WAL_SIZE_LIMIT_BYTES = 200 * 1024 * 1024;

export interface OpenOptions {
  file: string;
  synchronous: 'normal' | 'full';
}

/**
 * Creates `dir` and its missing parents, 0700, one at a time: Node 20's recursive mkdirSync spins
 * for ever on a path it cannot create under some file systems (`/proc/x`), where this fails with
 * the error of the level that cannot be made.
 */
function makeDirectory(dir: string): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  while (!fs.existsSync(at) && path.dirname(at) !== at) {
    missing.unshift(at);
    at = path.dirname(at);
  }
  if (fs.existsSync(at) && !fs.statSync(at).isDirectory()) throw new Error(`${at} is not a directory`);
  for (const level of missing) {
    try {
      fs.mkdirSync(level, { mode: 0o700 });
    } catch (error) {
      // Made meanwhile by someone else: fine, as a recursive mkdir would have it.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/**
 * Opens (and migrates) the SQLite database. WAL lets readers (admin API, health, scrapes)
 * run beside the single writer; synchronous=NORMAL in WAL mode survives a process crash
 * (what "durable before 202" protects against), FULL also survives power loss.
 */
export function openDatabase(options: OpenOptions): Db {
  const onDisk = options.file !== ':memory:';
  // Private to the service's user: the database holds every endpoint's signing secret (the
  // WAL and shared-memory files SQLite creates later take the database file's permissions).
  if (onDisk) makeDirectory(path.dirname(options.file));
  const created = onDisk && !fs.existsSync(options.file);
  const db = new Database(options.file);
  if (created) fs.chmodSync(options.file, 0o600);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  // Checkpoints (which fsync) run on a background thread (see checkpointer.ts); this larger
  // automatic threshold is where the main thread lets the WAL start over (and the bound should
  // that thread stop).
  db.pragma(`wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
  // A WAL can outgrow that while a long read pins it (a backup, say); when it starts over, the
  // file is cut back to this instead of keeping its largest size for good.
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version] ?? '');
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}

/** Registers an extra migration step; modules that own tables (outbound) add theirs at start-up. */
export function ensureSchema(db: Db, name: string, sql: string): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_parts (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)');
  const applied = db.prepare('SELECT 1 FROM schema_parts WHERE name = ?').get(name);
  if (applied) return;
  db.transaction(() => {
    db.exec(sql);
    db.prepare('INSERT INTO schema_parts (name, applied_at) VALUES (?, ?)').run(name, Date.now());
  })();
}

/** Wraps a store call so its duration reaches the metrics, by operation name. */
export function timed<T>(timer: QueryTimer, operation: string, fn: () => T): T {
  const start = process.hrtime.bigint();
  try {
    return fn();
  } finally {
    timer(operation, Number(process.hrtime.bigint() - start) / 1e9);
  }
}

// SQLite result codes meaning the store itself cannot write, whatever was being written.
const STORAGE_FAILURE = /^SQLITE_(FULL|IOERR|READONLY|CORRUPT|CANTOPEN|NOTADB|NOMEM|PROTOCOL|BUSY)/;

/**
 * Describes an error that says the store cannot write (disk full, I/O error, read-only or closed
 * database); null for anything else, such as a constraint a single call broke.
 */
export function storageFailure(error: unknown): string | null {
  if (error instanceof Database.SqliteError && STORAGE_FAILURE.test(error.code)) return `${error.code}: ${error.message}`;
  if (error instanceof TypeError && error.message.includes('database connection is not open')) return 'the database connection is closed';
  return null;
}

interface GroupedCall {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit over one connection: each call runs atomically inside one transaction shared with
 * every other call made in the same turn of the event loop, and its promise settles once that
 * transaction has committed (or with its own error, rolled back alone). A commit costs more than
 * the rows it carries (it appends every page it touched to the WAL), so the busy paths share
 * commits under load. Waiting longer to gather bigger groups was measured and rejected: every job
 * awaits a commit while holding a worker slot, so a longer wait slows processing more than the
 * shared pages save.
 */
export class GroupCommit {
  private queue: GroupedCall[] = [];
  private scheduled = false;
  private readonly rollbackListeners: (() => void)[] = [];
  private failing: string | null = null;
  private readonly changes: Database.Statement<[], number>;
  private probeTimer: NodeJS.Timeout | null = null;

  constructor(private readonly db: Db) {
    this.changes = db.prepare<[], number>('SELECT total_changes()').pluck();
  }

  /**
   * Why the last write failed when the store itself could not write (see storageFailure); null
   * once a transaction commits again. `SELECT 1` answers from a full disk, so this is what says
   * the store is down.
   */
  get writeFailure(): string | null {
    return this.failing;
  }

  /** Rows changed so far, read only while a failure stands (committed() needs it only then). */
  private changesWhileFailing(): number {
    return this.failing === null ? 0 : this.changes.get() ?? 0;
  }

  /**
   * Only a commit that wrote rows shows the store can write again: SQLite commits a transaction
   * that only read (a redelivered event's duplicate check) even on a full disk.
   */
  private committed(changesBefore: number): void {
    if (this.failing !== null && (this.changes.get() ?? 0) > changesBefore) this.failing = null;
  }

  private noteFailure(error: unknown): void {
    this.fail(storageFailure(error));
  }

  private fail(reason: string | null): void {
    if (reason === null) return;
    this.failing = reason;
    this.probeTimer ??= setInterval(() => this.probe(), PROBE_INTERVAL_MS).unref();
  }

  /**
   * Writes (and deletes again) two pages' worth of blob: a write that needs free space, as new
   * events do, rather than one that fits in a page already there. Its commit clears the failure.
   */
  private probe(): void {
    if (this.failing === null || !this.db.open) {
      if (this.probeTimer) clearInterval(this.probeTimer);
      this.probeTimer = null;
      return;
    }
    try {
      this.transaction(() => {
        this.db.prepare('INSERT OR REPLACE INTO store_probe (id, pad) VALUES (1, zeroblob(8192))').run();
        this.db.prepare('DELETE FROM store_probe WHERE id = 1').run();
      });
    } catch {
      // Still failing: transaction() has kept the reason.
    }
  }

  /** Called when a group, a call within it or a transaction rolls back (state cached during it must be forgotten). */
  onRollback(listener: () => void): void {
    this.rollbackListeners.push(listener);
  }

  /** Runs fn in a transaction of its own (outside any group); a rollback is reported like a group's. */
  transaction<T>(fn: () => T): T {
    const before = this.changesWhileFailing();
    try {
      const value = this.db.transaction(fn)();
      this.committed(before);
      return value;
    } catch (error) {
      this.noteFailure(error);
      this.rolledBack();
      throw error;
    }
  }

  private rolledBack(): void {
    for (const listener of this.rollbackListeners) listener();
  }

  run<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => this.commit());
    });
  }

  private commit(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    // Calls rarely fail, so the group first runs without a savepoint per call; only when one
    // fails is the group rolled back and run again with each call isolated in its own savepoint.
    const values: unknown[] = [];
    const before = this.changesWhileFailing();
    try {
      this.db.transaction(() => {
        for (const item of batch) values.push(item.fn());
      })();
    } catch (error) {
      this.noteFailure(error);
      this.rolledBack();
      if (batch.length === 1) batch[0]?.reject(error);
      else this.commitIsolated(batch);
      return;
    }
    this.committed(before);
    batch.forEach((item, i) => item.resolve(values[i]));
  }

  private commitIsolated(batch: GroupedCall[]): void {
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    const before = this.changesWhileFailing();
    try {
      this.db.transaction(() => {
        for (const item of batch) {
          try {
            outcomes.push({ ok: true, value: this.db.transaction(item.fn)() });
          } catch (error) {
            this.rolledBack();
            outcomes.push({ ok: false, error });
          }
        }
      })();
    } catch (error) {
      this.noteFailure(error);
      this.rolledBack();
      for (const item of batch) item.reject(error);
      return;
    }
    // A call that failed because the store cannot write leaves the failure standing.
    const failures = outcomes.map((outcome) => (outcome.ok ? null : storageFailure(outcome.error))).filter((f) => f !== null);
    if (failures[0]) this.fail(failures[0]);
    else this.committed(before);
    batch.forEach((item, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok) item.resolve(outcome.value);
      else item.reject(outcome?.error);
    });
  }
}

const groupCommits = new WeakMap<Db, GroupCommit>();

/** The one group commit of a connection, shared by every repository and queue that writes to it. */
export function groupCommitOf(db: Db): GroupCommit {
  let group = groupCommits.get(db);
  if (!group) {
    group = new GroupCommit(db);
    groupCommits.set(db, group);
  }
  return group;
}
