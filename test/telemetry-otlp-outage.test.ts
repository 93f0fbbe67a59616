import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OUTAGE_MESSAGES } from '../src/telemetry/outage.js';
import { freePort } from './helpers/prom-tools.js';
import { ADMIN_TOKEN, STRIPE_SECRET, tempDir, waitFor } from './helpers/service.js';
import { stripeEvent, stripeHeaders } from './helpers/signing.js';
import { spawnService } from './helpers/child.js';

describe('an unreachable OTLP collector', () => {
  it('never fails a request and is reported once per outage, not per failed export', async () => {
    // Nothing listens on this port: every export is refused.
    const refused = `http://127.0.0.1:${await freePort()}`;
    const child = await spawnService({ DATA_DIR: tempDir(), ADMIN_TOKEN, STRIPE_WEBHOOK_SECRET: STRIPE_SECRET, OTEL_EXPORTER_OTLP_ENDPOINT: refused }, { preload: true });
    const sendBurst = async () => {
      for (let i = 0; i < 10; i++) {
        const { body } = stripeEvent('charge.succeeded');
        const res = await fetch(`${child.url}/webhooks/stripe`, { method: 'POST', headers: stripeHeaders(body), body });
        assert.equal(res.status, 202);
      }
    };
    const lines = () => [...child.stdout, ...child.stderr.join('').split('\n')].filter((line) => line.includes(OUTAGE_MESSAGES.down));
    try {
      await sendBurst();
      // The batch processor exports every few seconds: wait for the first refused export.
      await waitFor('the outage to be reported', () => lines().length > 0, 30_000);
      await sendBurst();
      await waitFor('a second export attempt during the outage', () => child.stdout.filter((line) => line.includes('"message":"event processed"')).length >= 20);
    } finally {
      child.proc.kill('SIGTERM');
    }
    assert.equal(await child.exited, 0, child.stderr.join(''));
    // The shutdown flush is refused too; it is the same outage, so still one line.
    assert.equal(lines().length, 1, lines().join('\n'));
    assert.match(lines()[0] ?? '', /"level":"error"/);
  });
});
