/** What an outage reporter tells its sink: the first failure of an outage, then the recovery. */
export type OutageEvent =
  | { state: 'down'; backend: string; url: string; error: string }
  /** Every later failure of the same outage: for debug-level diagnostics, never an error line. */
  | { state: 'still_down'; backend: string; url: string; error: string; failed_attempts: number }
  | { state: 'up'; backend: string; url: string; failed_attempts: number; outage_seconds: number };

export type OutageSink = (event: OutageEvent) => void;

/**
 * Turns a stream of failures and successes of a telemetry backend (Loki, the OTLP collector)
 * into one report when it goes down and one when it comes back, so a dead backend costs one
 * log line per outage instead of one per batch or per line.
 */
export class OutageReporter {
  private down = false;
  private failures = 0;
  private since = 0;

  constructor(
    private readonly backend: string,
    private readonly url: string,
    private sink: OutageSink,
    private readonly now: () => number = Date.now,
  ) {}

  /** Where reports go from now on (the logger, once it exists). */
  reportTo(sink: OutageSink): void {
    this.sink = sink;
  }

  get isDown(): boolean {
    return this.down;
  }

  failed(error: unknown): void {
    this.failures += 1;
    if (this.down) {
      this.emit({ state: 'still_down', backend: this.backend, url: this.url, error: describe(error), failed_attempts: this.failures });
      return;
    }
    this.down = true;
    this.since = this.now();
    this.emit({ state: 'down', backend: this.backend, url: this.url, error: describe(error) });
  }

  succeeded(): void {
    if (!this.down) return;
    this.down = false;
    const event: OutageEvent = { state: 'up', backend: this.backend, url: this.url, failed_attempts: this.failures, outage_seconds: Math.round((this.now() - this.since) / 100) / 10 };
    this.failures = 0;
    this.emit(event);
  }

  private emit(event: OutageEvent): void {
    try {
      this.sink(event);
    } catch {
      // A report must never take the reporting path down with it.
    }
  }
}

/**
 * The URL as it may appear in a log line or an error: without user-info, query or fragment (they
 * may carry credentials). A URL that parses is shown as it parses, less those parts; one that
 * does not is cut at its last '@' before any query, since where its authority ends is anyone's
 * guess (a '/' in an unencoded password, a mistyped scheme), and losing text is the price of
 * never showing a password.
 */
export function displayUrl(url: string): string {
  const parsed = URL.canParse(url) ? new URL(url) : null;
  // Only a URL with an authority: in one like 'name:secret@host' the parser sees a scheme and a path.
  if (parsed && parsed.host !== '') {
    // An '@' the parser left in the path may end a password that held a '/': the path is not shown.
    if (!parsed.username && !parsed.password && parsed.pathname.includes('@')) return `${parsed.protocol}//${parsed.host}/…`;
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    parsed.hash = '';
    return parsed.href;
  }
  const shown = url.replace(/[?#].*$/s, '');
  const at = shown.lastIndexOf('@');
  if (at === -1) return shown;
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(shown)?.[0] ?? '';
  return scheme + shown.slice(at + 1);
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

/** The log messages of outage reports, the same from every backend (the backend is a field). */
export const OUTAGE_MESSAGES = {
  down: 'telemetry backend unreachable; its data is dropped until it answers (reported once per outage)',
  still_down: 'telemetry backend still unreachable',
  up: 'telemetry backend reachable again',
} as const;
