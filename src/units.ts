// Parsers for the human-friendly values the environment carries ("30s", "2m", "1mb").

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "250ms", "30s", "2m", "24h", "1d" or a bare number of seconds into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(text);
  if (!match) throw new Error(`"${text}" is not a duration (use e.g. 500ms, 30s, 2m, 24h)`);
  const value = Number(match[1]);
  const unit = (match[2] ?? 's').toLowerCase();
  return Math.round(value * (DURATION_UNITS[unit] ?? 1000));
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** Parses "512kb", "1mb" or a bare number of bytes. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(text);
  if (!match) throw new Error(`"${text}" is not a size (use e.g. 512kb, 1mb)`);
  const value = Number(match[1]);
  const unit = SIZE_UNITS[(match[2] ?? 'b').toLowerCase()] ?? 1;
  // A fraction of a kilobyte is a number of bytes; a fraction of a byte is a typo.
  if (unit === 1 && !Number.isInteger(value)) throw new Error(`"${text}" is not a whole number of bytes`);
  return Math.round(value * unit);
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
