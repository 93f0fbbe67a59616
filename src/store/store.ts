import type { Clock } from '../clock.js';
import { TtlCache, type CacheObserver } from './cache.js';
import { openDatabase, type Db, type QueryTimer } from './db.js';
import { EventStore } from './events.js';

/** The persistence the service runs on: one SQLite file, its repositories and its transactions. */
export class Store {
  readonly events: EventStore;

  private constructor(readonly db: Db, clock: Clock, timer: QueryTimer, observer: CacheObserver) {
    const seenKeys = new TtlCache<string>('idempotency', { maxEntries: 50_000, ttlMs: 3_600_000, now: () => clock.now(), observer });
    this.events = new EventStore(db, clock, timer, seenKeys);
  }

  static open(file: string, synchronous: 'normal' | 'full', clock: Clock, timer: QueryTimer, observer: CacheObserver): Store {
    return new Store(openDatabase({ file, synchronous }), clock, timer, observer);
  }

  /** Runs fn in one transaction: everything it writes commits together or not at all. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  ping(): boolean {
    try {
      return this.db.prepare('SELECT 1 AS ok').get() !== undefined;
    } catch {
      return false;
    }
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  /** Writes a consistent copy of the database while the service keeps running. */
  async backup(destination: string): Promise<void> {
    await this.db.backup(destination);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
