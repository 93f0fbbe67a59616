/** Hit, miss and timing reports of a cache; the metrics facade listens. */
export interface CacheObserver {
  lookup(cache: string, hit: boolean, seconds: number): void;
  operation(cache: string, operation: string, seconds: number): void;
}

/**
 * A small in-process cache with a time-to-live and a size bound (oldest entries go first,
 * Map keeps insertion order). It only ever saves a store round trip: callers fall back to the
 * store on a miss, so a cold or cleared cache is slower, never wrong.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    readonly name: string,
    private readonly options: { maxEntries: number; ttlMs: number; now: () => number; observer: CacheObserver },
  ) {}

  get(key: string): V | undefined {
    const start = process.hrtime.bigint();
    const entry = this.entries.get(key);
    let value: V | undefined;
    if (entry && entry.expiresAt > this.options.now()) value = entry.value;
    else if (entry) this.entries.delete(key);
    this.options.observer.lookup(this.name, value !== undefined, elapsed(start));
    return value;
  }

  set(key: string, value: V, ttlMs = this.options.ttlMs): void {
    const start = process.hrtime.bigint();
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.options.now() + ttlMs });
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    this.options.observer.operation(this.name, 'set', elapsed(start));
  }

  delete(key: string): void {
    const start = process.hrtime.bigint();
    this.entries.delete(key);
    this.options.observer.operation(this.name, 'delete', elapsed(start));
  }

  clear(): void {
    this.entries.clear();
  }
}

const elapsed = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9;
