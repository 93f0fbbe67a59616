import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';
import { listenUrl } from '../src/http/listen-url.js';
import { parseRetrySchedule } from '../src/outbound/retry-schedule.js';
import { displayUrl } from '../src/telemetry/outage.js';
import { tempDir } from './helpers/service.js';

function failure(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error;
  }
  assert.fail(`expected ${JSON.stringify(env)} to be refused`);
}

describe('configuration', () => {
  it('runs on embedded defaults with nothing set', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.match(config.dbFile, /data[/\\]hookwatch\.db$/);
    assert.equal(config.idempotencyTtlMs, 24 * 3_600_000);
    assert.equal(config.bodyLimitBytes, 1024 * 1024);
    assert.equal(config.stripe, null);
    assert.equal(config.adminTokenGenerated, true);
    assert.ok(config.adminToken.length >= 24);
    assert.deepEqual(config.delivery.retrySchedule, [120_000, 120_000, 120_000]);
    assert.equal(config.delivery.timeoutMs, 30_000);
    assert.equal(config.worker.concurrency, 32, 'processing jobs at once (README, .env.example)');
    assert.equal(config.worker.runTimeoutMs, 300_000, 'JOB_TIMEOUT (README, .env.example)');
    assert.equal(config.requestTimeoutMs, 30_000, 'REQUEST_TIMEOUT (README, .env.example)');
    assert.equal(config.delivery.concurrency, 64, 'delivery attempts at once (README, .env.example)');
    assert.equal(config.telemetry.lokiUrl, null);
    assert.equal(config.telemetry.otlpEndpoint, null);
  });

  it('names the variable and the reason for a bad value', () => {
    assert.equal(failure({ PORT: 'eighty' }).variable, 'PORT');
    assert.equal(failure({ PORT: '70000' }).variable, 'PORT');
    assert.match(failure({ IDEMPOTENCY_TTL: 'forever' }).message, /^IDEMPOTENCY_TTL: .*not a duration/);
    assert.equal(failure({ BODY_LIMIT: 'huge' }).variable, 'BODY_LIMIT');
    assert.equal(failure({ STRIPE_WEBHOOK_SECRET: 'sk_live_oops' }).variable, 'STRIPE_WEBHOOK_SECRET');
    assert.equal(failure({ WEBHOOK_SECRET_GITHUB: 'plain' }).variable, 'WEBHOOK_SECRET_GITHUB');
    assert.equal(failure({ RETRY_SCHEDULE: '2m,0s' }).variable, 'RETRY_SCHEDULE');
    assert.equal(failure({ LOKI_URL: 'not a url' }).variable, 'LOKI_URL');
    assert.equal(failure({ ADMIN_TOKEN: 'short' }).variable, 'ADMIN_TOKEN');
    assert.equal(failure({ LOG_LEVEL: 'loud' }).variable, 'LOG_LEVEL');
    assert.equal(failure({ ALERT_EMAIL_TO: 'ops@example.com, nope' }).variable, 'ALERT_EMAIL_TO');
    assert.equal(failure({ SMTP_URL: 'http://mail' }).variable, 'SMTP_URL');
  });

  it('takes whole numbers as digits only', () => {
    for (const port of [' ', '0x1F90', '80.5', '1e3', '-1']) assert.equal(failure({ PORT: port }).variable, 'PORT', JSON.stringify(port));
    assert.equal(loadConfig({ PORT: '8080' }).port, 8080);
    assert.equal(failure({ JOB_BACKOFF_FACTOR: '0x2' }).variable, 'JOB_BACKOFF_FACTOR');
    assert.equal(loadConfig({ JOB_BACKOFF_FACTOR: '1.5' }).worker.backoffFactor, 1.5);
  });

  it('refuses an IDEMPOTENCY_TTL shorter than a signature stays acceptable, which would let replays through', () => {
    const github = { WEBHOOK_SECRET_GITHUB: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' };
    assert.match(failure({ ...github, IDEMPOTENCY_TTL: '2s' }).message, /^IDEMPOTENCY_TTL: must be at least 600 s \(the Standard Webhooks tolerance/);
    assert.equal(loadConfig({ ...github, IDEMPOTENCY_TTL: '10m' }).idempotencyTtlMs, 600_000);
    const stripe = { STRIPE_WEBHOOK_SECRET: 'whsec_test_secret', STRIPE_TOLERANCE_SECONDS: '900' };
    // Accepted from 900 s before its timestamp to 900 s after.
    assert.match(failure({ ...stripe, IDEMPOTENCY_TTL: '15m' }).message, /^IDEMPOTENCY_TTL: must be at least 1800 s \(twice STRIPE_TOLERANCE_SECONDS/);
    assert.equal(loadConfig({ ...stripe, IDEMPOTENCY_TTL: '30m' }).idempotencyTtlMs, 1_800_000);
    assert.match(failure({ ...github, STRIPE_WEBHOOK_SECRET: 'whsec_test_secret', IDEMPOTENCY_TTL: '2s' }).message, /at least 600 s/, 'the longest floor is named, not the first');
    assert.equal(loadConfig({ IDEMPOTENCY_TTL: '2s' }).idempotencyTtlMs, 2000, 'no signed source, nothing to replay');
    // Left unset, it is 24 h or, with a longer tolerance, long enough for it.
    assert.equal(loadConfig({ STRIPE_WEBHOOK_SECRET: 'whsec_test_secret' }).idempotencyTtlMs, 86_400_000);
    assert.equal(loadConfig({ STRIPE_WEBHOOK_SECRET: 'whsec_test_secret', STRIPE_TOLERANCE_SECONDS: '86400' }).idempotencyTtlMs, 172_800_000);
  });

  it('refuses a URL whose user-info does not percent-decode: no client could send to it (nodemailer would send the password as written)', () => {
    for (const variable of ['ERROR_WEBHOOK_URL', 'LOKI_URL', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'SMTP_URL']) {
      const scheme = variable === 'SMTP_URL' ? 'smtp' : 'http';
      const error = failure({ [variable]: `${scheme}://user:S3cret%ZZ@hooks.example.com/x` });
      assert.equal(error.variable, variable);
      assert.match(error.message, /not valid percent-encoding/);
      assert.doesNotMatch(error.message, /S3cret/);
    }
    assert.equal(loadConfig({ ERROR_WEBHOOK_URL: 'http://user:p%41ss@hooks.example.com/x' }).delivery.errorWebhookUrl, 'http://user:p%41ss@hooks.example.com/x');
    assert.equal(loadConfig({ SMTP_URL: 'smtp://user:p%41ss@mail.example.com:587' }).email.smtpUrl, 'smtp://user:p%41ss@mail.example.com:587');
  });

  it('refuses an admin token it could never match in a Bearer header', () => {
    assert.match(failure({ ADMIN_TOKEN: 'correct horse battery staple' }).message, /^ADMIN_TOKEN: must not contain spaces/);
    assert.equal(failure({ ADMIN_TOKEN: 'a-long-enough-token\n' }).variable, 'ADMIN_TOKEN');
    assert.equal(loadConfig({ ADMIN_TOKEN: 'a-long-enough-token' }).adminToken, 'a-long-enough-token');
  });

  it('never repeats a refused secret, nor the credentials of a refused URL', () => {
    const cases: [Record<string, string>, string][] = [
      [{ STRIPE_WEBHOOK_SECRET: 'sk_live_51HxTopSecretKey' }, 'TopSecret'],
      [{ WEBHOOK_SECRET_GITHUB: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,whsec_N3wS3cr3t!!' }, 'N3wS3cr3t'],
      [{ SMTP_URL: 'smtp+starttls://mailer:Hunter2Password@mail.example.com' }, 'Hunter2'],
      [{ ERROR_WEBHOOK_URL: 'ftp://alerts:S3cretHookPw@hooks.example.com/x' }, 'S3cretHookPw'],
      [{ LOKI_URL: 'loki://push.example.com/api?token=abc123secret' }, 'abc123secret'],
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:pw123secret@otel.example.com/v1' }, 'pw123secret'],
      // A '/' in an unencoded password, or a scheme missing its ':', ends the authority early.
      [{ LOKI_URL: 'http://admin:s3cr/etpw@loki:3100x' }, 'etpw'],
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http//admin:s3cretpw@jaeger:4318' }, 's3cretpw'],
      [{ SMTP_URL: 'smtp://user:s3cr/etpw@mail.example.com:99999' }, 'etpw'],
    ];
    for (const [env, secret] of cases) {
      const error = failure(env);
      assert.ok(!error.message.includes(secret), `${error.message} shows ${secret}`);
      assert.match(error.message, /\(got /, 'still says what kind of value it got');
    }
    assert.match(failure({ SMTP_URL: 'smtp+starttls://mailer:Hunter2Password@mail.example.com' }).message, /"smtp\+starttls:\/\/mail\.example\.com"/);
  });

  it('shows a URL without its credentials, and never a host the URL does not name', () => {
    // An '@' in the path could be the end of a password holding a '/': the host stays, the path goes.
    assert.equal(displayUrl('https://hooks.example.com/notify/ops@acme.io'), 'https://hooks.example.com/…');
    assert.equal(displayUrl('http://mailer:2525/s3cretPw@mail.example.com'), 'http://mailer:2525/…');
    assert.equal(displayUrl('https://api.example.com/v1/users/hooks?token=t0ken'), 'https://api.example.com/v1/users/hooks');
    assert.equal(displayUrl('https://user:pa55@hooks.example.com:8443/in#frag'), 'https://hooks.example.com:8443/in');
  });

  it('reads one Standard Webhooks source per WEBHOOK_SECRET_<SOURCE>, with rotation secrets', () => {
    const config = loadConfig({
      WEBHOOK_SECRET_GITHUB: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      WEBHOOK_SECRET_MY_SHOP: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD',
    });
    assert.deepEqual([...config.sources.keys()].sort(), ['github', 'my-shop']);
    assert.equal(config.sources.get('my-shop')?.length, 2);
  });

  it('refuses a backoff cap below its base, and body limits a Buffer could not hold or of a fraction of a byte', () => {
    const backoff = failure({ JOB_BACKOFF_BASE: '2h', JOB_BACKOFF_MAX: '1s' });
    assert.equal(backoff.variable, 'JOB_BACKOFF_MAX');
    assert.match(backoff.message, /at least JOB_BACKOFF_BASE/);
    assert.match(failure({ BODY_LIMIT: '5gb' }).message, /^BODY_LIMIT: must be at most 100mb/);
    assert.match(failure({ BODY_LIMIT: '0.5' }).message, /^BODY_LIMIT: .*not a whole number of bytes/);
    assert.equal(loadConfig({ BODY_LIMIT: '1.5kb' }).bodyLimitBytes, 1536);
    assert.equal(loadConfig({ JOB_BACKOFF_BASE: '1s', JOB_BACKOFF_MAX: '1s' }).worker.backoffMaxMs, 1000);
  });

  it('checks STRIPE_TOLERANCE_SECONDS even while no Stripe secret is set', () => {
    assert.equal(failure({ STRIPE_TOLERANCE_SECONDS: 'abc' }).variable, 'STRIPE_TOLERANCE_SECONDS');
  });

  it('refuses a WEBHOOK_SECRET_<SOURCE> holding only spaces or commas, which would open the route with no secret to check', () => {
    for (const value of [' ', ',', ' , ']) {
      const error = failure({ WEBHOOK_SECRET_GITHUB: value });
      assert.equal(error.variable, 'WEBHOOK_SECRET_GITHUB');
      assert.match(error.message, /holds no secret/);
    }
  });

  it('refuses two WEBHOOK_SECRET_ variables that name one source, which would leave one secret unused', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    for (const [first, second] of [['WEBHOOK_SECRET_GITHUB', 'WEBHOOK_SECRET_github'], ['WEBHOOK_SECRET_MY_SHOP', 'WEBHOOK_SECRET_MY-SHOP']] as const) {
      const error = failure({ [first]: secret, [second]: 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD' });
      assert.equal(error.variable, second);
      assert.equal(error.message, `${second}: names the same source (${first.slice('WEBHOOK_SECRET_'.length).toLowerCase().replaceAll('_', '-')}) as ${first}; keep one of the two`);
    }
  });

  it('refuses an EVENT_TYPE_ALLOWLIST with no type, with other, or with a type longer than any event carries', () => {
    assert.match(failure({ EVENT_TYPE_ALLOWLIST: ' , ,' }).message, /^EVENT_TYPE_ALLOWLIST: lists no event type/);
    assert.match(failure({ EVENT_TYPE_ALLOWLIST: 'order.created,other' }).message, /^EVENT_TYPE_ALLOWLIST: other is reserved/);
    assert.match(failure({ EVENT_TYPE_ALLOWLIST: `order.created,${'x'.repeat(256)}` }).message, /^EVENT_TYPE_ALLOWLIST: "x+…" is longer than the 255 characters/);
    assert.deepEqual(loadConfig({ EVENT_TYPE_ALLOWLIST: 'order.created, order.updated,order.created' }).eventTypeAllowlist, ['order.created', 'order.updated']);
    // Types as other senders name them are accepted, as ingest accepts them.
    assert.deepEqual(loadConfig({ EVENT_TYPE_ALLOWLIST: 'orders/create,app/uninstalled' }).eventTypeAllowlist, ['orders/create', 'app/uninstalled']);
  });

  it('refuses a source named api: published events are stored under it', () => {
    // Inbound and published events would share (source, event id) idempotency keys.
    const error = failure({ WEBHOOK_SECRET_API: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' });
    assert.equal(error.variable, 'WEBHOOK_SECRET_API');
    assert.match(error.message, /^WEBHOOK_SECRET_API: .*reserved.*admin API/);
    assert.equal(failure({ WEBHOOK_SECRET_STRIPE: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }).variable, 'WEBHOOK_SECRET_STRIPE');
    // The label requests to unconfigured sources are counted under, which the error-rate alerts leave out.
    assert.match(failure({ WEBHOOK_SECRET_UNKNOWN: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }).message, /^WEBHOOK_SECRET_UNKNOWN: .*reserved/);
  });

  it('refuses a whsec_ secret the Standard Webhooks library cannot decode, without showing it', () => {
    for (const secret of ['whsec_abcd====efghijklmnop', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La=aSw', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2L=====']) {
      const error = failure({ WEBHOOK_SECRET_GITHUB: `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,${secret}` });
      assert.equal(error.variable, 'WEBHOOK_SECRET_GITHUB');
      assert.match(error.message, /base64/);
      assert.ok(!error.message.includes(secret.slice('whsec_'.length)), `${error.message} shows the secret`);
      assert.match(error.message, /\(got \d+ characters, not shown\)/);
    }
  });

  it('stops start-up on an undecodable secret with the message, not a stack trace', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH ?? '', WEBHOOK_SECRET_GITHUB: 'whsec_abcd====efghijklmnop', DATA_DIR: '/tmp/hookwatch-never-used' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /invalid configuration: WEBHOOK_SECRET_GITHUB: /);
    assert.ok(!result.stderr.includes('abcd===='), result.stderr);
    assert.ok(!/\n\s+at /.test(result.stderr), `no stack trace expected:\n${result.stderr}`);
  });

  it('refuses an exponential retry schedule with too many retries before building it', () => {
    const started = performance.now();
    const error = failure({ RETRY_SCHEDULE: 'exp:30s*2x4000000000' });
    assert.equal(error.variable, 'RETRY_SCHEDULE');
    assert.match(error.message, /at most 50 retries are allowed, got 4000000000/);
    assert.ok(performance.now() - started < 1000, 'refused without allocating the schedule');
    assert.throws(() => parseRetrySchedule('exp:1s*1x51'), /at most 50 retries/);
    assert.equal(parseRetrySchedule('exp:1s*1x50').length, 50);
  });

  it('prints the URL it listens on as one that can be opened, IPv6 in brackets', () => {
    assert.equal(listenUrl('127.0.0.1', 3000), 'http://127.0.0.1:3000');
    assert.equal(listenUrl('0.0.0.0', 3000), 'http://127.0.0.1:3000');
    assert.equal(listenUrl('::1', 3000), 'http://[::1]:3000');
    assert.equal(listenUrl('::', 3000), 'http://[::1]:3000');
    assert.equal(listenUrl('hookwatch.internal', 80), 'http://hookwatch.internal:80');
  });

  it('reads a bare duration as seconds and a bare size as bytes, as the README says', () => {
    const config = loadConfig({ JOB_LEASE: '30', BODY_LIMIT: '2048' });
    assert.equal(config.worker.leaseMs, 30_000);
    assert.equal(config.bodyLimitBytes, 2048);
  });

  it('parses retry schedules as a list or an exponential form', () => {
    assert.deepEqual(parseRetrySchedule('2m,2m,2m'), [120_000, 120_000, 120_000]);
    assert.deepEqual(parseRetrySchedule('exp:30s*2x4'), [30_000, 60_000, 120_000, 240_000]);
    assert.deepEqual(parseRetrySchedule('none'), []);
    assert.throws(() => parseRetrySchedule('soon'), /not a duration/);
    assert.throws(() => parseRetrySchedule('8d'), /longer than 7 days/);
  });

  const start = (env: Record<string, string>) => spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', DATA_DIR: tempDir('hookwatch-config-'), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });

  it('stops start-up with a message naming the variable', () => {
    const result = start({ PORT: 'abc' });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /invalid configuration: PORT: /);
  });

  it('names the variable, without a stack trace, when a setting fails only once used', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const file = path.join(tempDir('hookwatch-config-'), 'a-file');
    fs.writeFileSync(file, '');
    try {
      const cases: [Record<string, string>, RegExp][] = [
        [{ HOST: '127.0.0.1', PORT: String((taken.address() as AddressInfo).port) }, /^hookwatch: invalid configuration: PORT: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/],
        [{ HOST: 'no-such-host.invalid', PORT: '0' }, /^hookwatch: invalid configuration: HOST: cannot listen on no-such-host\.invalid:0: /],
        [{ HANDLERS_MODULE: '/nonexistent/handlers.js' }, /^hookwatch: invalid configuration: HANDLERS_MODULE: cannot load \/nonexistent\/handlers\.js: /],
        [{ DATA_DIR: file }, /^hookwatch: invalid configuration: DATA_DIR: cannot keep the database in .*a-file: .*a-file is not a directory/],
        [{ DATA_DIR: path.join(file, 'below') }, /^hookwatch: invalid configuration: DATA_DIR: cannot keep the database in .*below: .*a-file is not a directory/],
        // Node 20's recursive mkdir spins for ever on this one.
        [{ DATA_DIR: '/proc/hookwatch-nowhere/data' }, /^hookwatch: invalid configuration: DATA_DIR: cannot keep the database in \/proc\/hookwatch-nowhere\/data: .*ENOENT/],
      ];
      // A handler module's own failure, whatever its code, is not blamed on a setting.
      const handlers = path.join(tempDir('hookwatch-config-'), 'handlers.mjs');
      fs.writeFileSync(handlers, "export function register() { throw Object.assign(new Error('no access to the billing API'), { code: 'EACCES' }); }\n");
      const own = start({ PORT: '0', HOST: '127.0.0.1', HANDLERS_MODULE: handlers });
      assert.equal(own.status, 1);
      assert.match(own.stderr, /no access to the billing API/);
      assert.doesNotMatch(own.stderr, /invalid configuration/);
      // Taking the built-in forwarder's name, though, is a setting's mistake, not the module's failure.
      const clashing = path.join(tempDir('hookwatch-config-'), 'clashing.mjs');
      fs.writeFileSync(clashing, "export function register(registry) { registry.register('*', 'outbound.forward', () => {}); }\n");
      cases.push([{ HANDLERS_MODULE: clashing }, /^hookwatch: invalid configuration: HANDLERS_MODULE: registers a handler named outbound\.forward, the name of the built-in handler/]);
      for (const [env, message] of cases) {
        const result = start({ PORT: '0', HOST: '127.0.0.1', ...env });
        assert.equal(result.status, 1, JSON.stringify(env));
        const line = result.stderr.split('\n').find((l) => l.startsWith('hookwatch: ')) ?? result.stderr;
        assert.match(line, message);
        assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
      }
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });
});
