import type { Clock } from '../clock.js';
import { TtlCache, type CacheObserver } from './cache.js';
import { Checkpointer } from './checkpointer.js';
import { groupCommitOf, openDatabase, type Db, type QueryTimer } from './db.js';
import { DeliveryStore } from './deliveries.js';
import { EndpointHealthStore } from './endpoint-health.js';
import { EndpointStore, type Endpoint } from './endpoints.js';
import { EventStore, type EventContent } from './events.js';

/** The database file could not be created, opened or migrated (a file where its folder should be, no permission, a full disk, not a database). */
export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError';
  constructor(file: string, cause: unknown) {
    super(`cannot open ${file}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** The persistence the service runs on: one SQLite file, its repositories and its transactions. */
export class Store {
  readonly events: EventStore;
  // Outbound (the sending side): endpoints, deliveries with their attempt log, failure-monitor state.
  readonly endpoints: EndpointStore;
  readonly deliveries: DeliveryStore;
  readonly endpointHealth: EndpointHealthStore;

  private constructor(readonly db: Db, clock: Clock, timer: QueryTimer, observer: CacheObserver, private readonly checkpointer: Checkpointer | null) {
    const seenKeys = new TtlCache<string>('idempotency', { maxEntries: 50_000, ttlMs: 3_600_000, now: () => clock.now(), observer });
    // Sized for the events between being stored and their deliveries' first attempts under load:
    // jobs queue in order behind a backlog, which reached about 5,000 in the pipeline benchmark.
    const contents = new TtlCache<EventContent>('events', { maxEntries: 16_384, ttlMs: 60_000, now: () => clock.now(), observer });
    this.events = new EventStore(db, clock, timer, seenKeys, contents);
    const endpointCache = new TtlCache<Endpoint | Endpoint[]>('endpoints', { maxEntries: 10_000, ttlMs: 30_000, now: () => clock.now(), observer });
    this.endpoints = new EndpointStore(db, clock, timer, endpointCache);
    this.deliveries = new DeliveryStore(db, clock, timer);
    // What was cached during a transaction that then rolled back may not be so: a key would claim a
    // duplicate that was never stored, an endpoint a change that never happened, an endpoint no
    // parked deliveries that are there again, a just-queued delivery a row that is not there, an
    // endpoint's failure-monitor state an attempt that was never recorded.
    this.endpointHealth = new EndpointHealthStore(db, timer, () => clock.now());
    groupCommitOf(db).onRollback(() => {
      this.events.forgetCachedKeys();
      endpointCache.clear();
      this.deliveries.forgetUncommitted();
      this.endpointHealth.forgetUncommitted();
    });
  }

  static open(file: string, synchronous: 'normal' | 'full', clock: Clock, timer: QueryTimer, observer: CacheObserver): Store {
    let db: Db | undefined;
    try {
      db = openDatabase({ file, synchronous });
      // Each part creates its tables (first start, upgrade): those writes can fail the same way.
      return new Store(db, clock, timer, observer, file === ':memory:' ? null : new Checkpointer(file));
    } catch (error) {
      db?.close();
      throw new StoreOpenError(file, error);
    }
  }

  /** Runs fn in one transaction: everything it writes commits together or not at all. */
  transaction<T>(fn: () => T): T {
    return groupCommitOf(this.db).transaction(fn);
  }

  /** Runs fn atomically within the commit shared by this turn of the event loop (see GroupCommit). */
  grouped<T>(fn: () => T): Promise<T> {
    return groupCommitOf(this.db).run(fn);
  }

  ping(): boolean {
    try {
      return this.db.prepare('SELECT 1 AS ok').get() !== undefined;
    } catch {
      return false;
    }
  }

  /** Why writes are failing (disk full, I/O error, closed database), or null while they commit. */
  get writeFailure(): string | null {
    return groupCommitOf(this.db).writeFailure;
  }

  /** The last error of the background checkpoint, if the last one failed. */
  get checkpointError(): string | null {
    return this.checkpointer?.error ?? null;
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  /** Stops the checkpointer (it checkpoints one last time) and closes the connection. */
  async close(): Promise<void> {
    await this.checkpointer?.stop();
    if (this.db.open) this.db.close();
  }
}
