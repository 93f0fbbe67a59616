import { Router } from 'express';

export interface HealthCheck {
  name: string;
  /** Returns details when healthy; throws (or returns ok: false) when not. */
  run(): { ok: boolean; [detail: string]: unknown };
}

/** GET /health: 200 with every check when all pass, 503 naming the failed ones otherwise. */
export function healthRouter(checks: readonly HealthCheck[], isShuttingDown: () => boolean): Router {
  const router = Router();
  router.get('/health', (_req, res) => {
    const results: Record<string, unknown> = {};
    const failed: string[] = [];
    for (const check of checks) {
      try {
        const result = check.run();
        results[check.name] = result;
        if (!result.ok) failed.push(check.name);
      } catch (error) {
        results[check.name] = { ok: false, error: (error as Error).message };
        failed.push(check.name);
      }
    }
    if (isShuttingDown()) failed.push('shutdown');
    res.setHeader('Cache-Control', 'no-store');
    res.status(failed.length ? 503 : 200).json({ status: failed.length ? 'unhealthy' : 'ok', failed, checks: results });
  });
  return router;
}
