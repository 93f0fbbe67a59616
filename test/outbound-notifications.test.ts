import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { tempDir, waitFor, type TestService } from './helpers/service.js';
import { admin, publish, Receiver, registerEndpoint, startOutboundService, TestClock, type EndpointBody } from './helpers/outbound-harness.js';

/** A real SMTP server on 127.0.0.1 that parses what it receives. */
async function startSmtp(): Promise<{ mails: ParsedMail[]; url: string; close(): Promise<void> }> {
  const mails: ParsedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      simpleParser(stream).then((mail) => { mails.push(mail); callback(); }, (error: Error) => callback(error));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return { mails, url: `smtp://127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const recipients = (mail: ParsedMail): string[] =>
  ([] as AddressObject[]).concat(mail.to ?? []).flatMap((to) => to.value.map((a) => a.address ?? '')).sort();

describe('telling people about failing endpoints', () => {
  const clock = new TestClock();
  const dataDir = tempDir('hookwatch-outbound-notify-');
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let errorHook: Receiver;
  let endpoint: Receiver;
  let t: TestService;

  const start = () => startOutboundService({
    DATA_DIR: dataDir,
    RETRY_SCHEDULE: 'none',
    DELIVERY_CONCURRENCY: '1',
    SMTP_URL: smtp.url,
    ALERT_EMAIL_FROM: 'hookwatch@example.com',
    ALERT_EMAIL_TO: 'oncall@example.com',
    ERROR_WEBHOOK_URL: errorHook.url,
  }, clock);

  before(async () => {
    smtp = await startSmtp();
    errorHook = await Receiver.start(() => ({ status: 200 }), '/errors');
    // Fails with the status the event asks for; 200 otherwise.
    endpoint = await Receiver.start((req) => {
      const data = (JSON.parse(req.body) as { data: { status?: number } }).data;
      return { status: data.status ?? 200, body: data.status ? `failing with ${data.status}` : 'ok' };
    });
    t = await start();
  });
  after(async () => {
    await t.close();
    await endpoint.close();
    await errorHook.close();
    await smtp.close();
  });

  /** Publishes one event to `type` and waits until its attempt and any notification it caused are done. */
  async function attempt(type: string, status: number | undefined): Promise<void> {
    const published = await publish(t, type, status ? { status } : {});
    const id = published.deliveries[0]?.id ?? '';
    await waitFor(`attempt of ${type}`, () => (t.service.store.deliveries.get(id)?.attempts ?? 0) === 1
      && t.service.jobs.pendingCount('deliveries') === 0 && t.service.jobs.pendingCount('notifications') === 0);
  }

  const mailsFor = (ep: EndpointBody) => smtp.mails.filter((mail) => mail.text?.includes(ep.id));
  const hooksFor = (ep: EndpointBody) => errorHook.requests.filter((r) => (JSON.parse(r.body) as { message: string }).message.includes(ep.id));

  let six: EndpointBody;
  let streaky: EndpointBody;

  it('sends nothing for exactly 5 failures out of 5, and one email at 6 out of 6', async () => {
    const ep = await registerEndpoint(t, endpoint, ['six.*'], { owner_emails: ['owner@example.com', 'second@example.com'] });
    six = ep;
    for (let i = 0; i < 5; i++) await attempt('six.thing', 500);
    assert.equal(mailsFor(ep).length, 0, '5 of 5 does not fire');

    await attempt('six.thing', 500);
    const mails = await waitFor('the owner email', () => (mailsFor(ep).length === 1 ? mailsFor(ep) : undefined));
    const mail = mails[0];
    assert.ok(mail);
    assert.deepEqual(recipients(mail), ['oncall@example.com', 'owner@example.com', 'second@example.com']);
    assert.match(mail.subject ?? '', /failing/);
    const text = mail.text ?? '';
    assert.ok(text.includes(endpoint.url), 'names the endpoint URL');
    assert.match(text, /6 failed attempts out of 6/);
    assert.match(text, new RegExp(`Period: +${new Date(clock.now()).toISOString()} to ${new Date(clock.now()).toISOString()}`));
    assert.match(text, /server error \(HTTP 5xx\): 6/);
    assert.match(text, /logs.*database connections.*recent deployments/);
    assert.match(mail.messageId ?? '', /^<ntf_[0-9a-z]+_\d+@hookwatch>$/, 'a Message-ID that stays the same should a crash make it be sent again');

    for (let i = 0; i < 4; i++) await attempt('six.thing', 500);
    assert.equal(mailsFor(ep).length, 1, 'one email per window, not one per failure');
  });

  it('sends one email for 51 failures at a 60 % failure rate, naming the most common reasons', async () => {
    const ep = await registerEndpoint(t, endpoint, ['volume.*'], { owner_emails: ['volume@example.com'] });
    // F F F S S repeated: 60 % failures; two in three failures are 500s, one a 404.
    let failures = 0;
    for (let i = 0; failures < 51; i++) {
      const fails = i % 5 < 3;
      if (fails) failures += 1;
      if (failures === 51 && fails) assert.equal(mailsFor(ep).length, 0, 'nothing before the 51st failure');
      await attempt('volume.thing', fails ? (failures % 3 === 0 ? 404 : 500) : undefined);
    }
    const mails = mailsFor(ep);
    assert.equal(mails.length, 1);
    const text = mails[0]?.text ?? '';
    assert.match(text, /51 failed attempts out of 83 \(61\.4 %\)/);
    const fivexx = text.indexOf('server error (HTTP 5xx): 34');
    const fourxx = text.indexOf('rejected (HTTP 4xx or an unfollowed redirect): 17');
    assert.ok(fivexx > 0 && fourxx > fivexx, 'reasons, most common first');
    assert.match(text, /signature verification uses the current signing secret/);
    assert.deepEqual(recipients(mails[0] as ParsedMail), ['oncall@example.com', 'volume@example.com']);
  });

  it('POSTs to the error webhook after 3 consecutive failures, once per streak', async () => {
    const ep = await registerEndpoint(t, endpoint, ['streak.*']);
    streaky = ep;
    await attempt('streak.thing', 502);
    await attempt('streak.thing', 502);
    assert.equal(hooksFor(ep).length, 0);
    await attempt('streak.thing', 503);
    assert.equal(hooksFor(ep).length, 1);
    const body = JSON.parse(hooksFor(ep)[0]?.body ?? '{}') as { code: number; endpoint: string; message: string };
    assert.equal(body.code, 503);
    assert.equal(body.endpoint, endpoint.url);
    assert.match(body.message, /3 consecutive delivery attempts/);
    await attempt('streak.thing', 500);
    assert.equal(hooksFor(ep).length, 1, 'once per streak');

    await attempt('streak.thing', undefined);
    await attempt('streak.thing', 500);
    await attempt('streak.thing', 500);
    assert.equal(hooksFor(ep).length, 1, 'a success ended the streak');
  });

  it('keeps the monitor state across a restart: nothing lost, nothing repeated', async () => {
    const fine = await registerEndpoint(t, endpoint, ['fine.*']);
    await attempt('fine.thing', undefined);
    await t.close();
    t = await start();
    // webhook_endpoint_up comes back from the saved health, not only with each endpoint's next attempt.
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    const up = (ep: EndpointBody) => new RegExp(`^webhook_endpoint_up\\{endpoint="${ep.id}"\\} (\\d+)$`, 'm').exec(metrics)?.[1];
    assert.deepEqual([up(fine), up(streaky), up(six)], ['1', '0', '0']);
    // six's window already notified: another failure must not send a second email.
    await attempt('six.thing', 500);
    assert.equal(mailsFor(six).length, 1);
    // streaky had 2 failures in its new streak before the restart: the third fires.
    await attempt('streak.thing', 500);
    assert.equal(hooksFor(streaky).length, 2);
    const body = JSON.parse(hooksFor(streaky)[1]?.body ?? '{}') as { code: number };
    assert.equal(body.code, 500);
  });

  it('disables an endpoint that answers 410 and tells its owners', async () => {
    const ep = await registerEndpoint(t, endpoint, ['gone.*'], { owner_emails: ['gone@example.com'] });
    await attempt('gone.thing', 410);
    const shown = await admin(t, 'get', `/api/v1/webhooks/${ep.id}`);
    assert.equal(shown.body.disabled, true);
    assert.match(shown.body.disabled_reason as string, /410/);
    const mail = await waitFor('disabled email', () => mailsFor(ep)[0]);
    assert.match(mail.subject ?? '', /disabled \(410 Gone\)/);
    assert.deepEqual(recipients(mail), ['gone@example.com', 'oncall@example.com']);
    const next = await publish(t, 'gone.thing', {});
    assert.equal(next.deliveries.length, 0, 'a disabled endpoint receives nothing');

    const enabled = await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ disabled: false });
    assert.equal(enabled.body.disabled, false);
    await attempt('gone.thing', undefined);
  });
});

describe('notifications while the delivery slots are full', () => {
  it('sends the error webhook while other endpoints\' backlog still fills every delivery slot', async () => {
    const errorHook = await Receiver.start(() => ({ status: 200 }), '/errors');
    const failing = await Receiver.start(() => ({ status: 500, body: 'down', delayMs: 1000 }));
    const slow = await Receiver.start(() => ({ status: 200, body: 'ok', delayMs: 2500 }));
    // 16 slots: 3 deliveries to an endpoint failing in 1 s, then 30 to one answering in 2.5 s. The
    // third failure comes at 1 s with slow deliveries still due; queued behind them, the error
    // webhook would wait for the slow ones to free their slots.
    const t = await startOutboundService({ DELIVERY_CONCURRENCY: '16', DELIVERY_TIMEOUT: '4s', RETRY_SCHEDULE: 'none', ERROR_WEBHOOK_URL: errorHook.url });
    try {
      await registerEndpoint(t, failing, ['broken.*']);
      await registerEndpoint(t, slow, ['slow.*']);
      for (let i = 0; i < 3; i++) await publish(t, 'broken.thing', { i });
      const slowOnes: string[] = [];
      for (let i = 0; i < 30; i++) slowOnes.push((await publish(t, 'slow.thing', { i })).deliveries[0]?.id ?? '');
      await waitFor('the error webhook', () => errorHook.requests.length > 0, 30_000);
      const delivered = slowOnes.filter((id) => t.service.store.deliveries.get(id)?.status === 'delivered').length;
      assert.equal(delivered, 0, 'it went out before any slow delivery had freed its slot');
    } finally {
      await t.close();
      await slow.close();
      await failing.close();
      await errorHook.close();
    }
  });
});

describe('a notification that keeps failing', () => {
  it('is retried with backoff, then dead-lettered on the notifications queue, where the filter finds it', async () => {
    const errorHook = await Receiver.start(() => ({ status: 500, body: 'down' }), '/errors');
    const failing = await Receiver.start(() => ({ status: 500, body: 'down' }));
    const t = await startOutboundService({ RETRY_SCHEDULE: 'none', ERROR_WEBHOOK_URL: errorHook.url, JOB_MAX_ATTEMPTS: '2', JOB_BACKOFF_BASE: '10ms' });
    try {
      await registerEndpoint(t, failing, ['broken.*']);
      for (let i = 0; i < 3; i++) await publish(t, 'broken.thing', { i });
      const listed = await waitFor('the dead-lettered error webhook', async () => {
        const res = await admin(t, 'get', '/api/v1/dead-letters?queue=notifications');
        return (res.body.data as unknown[]).length > 0 ? res.body.data as { queue: string; kind: string; attempts: number; last_error: string }[] : undefined;
      });
      assert.deepEqual(listed.map((job) => [job.queue, job.kind, job.attempts]), [['notifications', 'notify.error_webhook', 2]]);
      assert.match(listed[0]?.last_error ?? '', /HTTP 500/);
      assert.equal(errorHook.requests.length, 2, 'tried twice');
      const keys = errorHook.requests.map((r) => r.headers['idempotency-key']);
      assert.match(String(keys[0]), /^ntf_[0-9a-z]+_\d+$/);
      assert.equal(keys[1], keys[0], 'both tries carry the same Idempotency-Key, so the receiver can drop a repeat');
      const deliveries = await admin(t, 'get', '/api/v1/dead-letters?queue=deliveries');
      assert.ok((deliveries.body.data as { kind: string }[]).every((job) => job.kind === 'delivery.send'));
      // `total` counts what the filter selects, not every dead letter.
      assert.equal((await admin(t, 'get', '/api/v1/dead-letters?queue=notifications')).body.total, 1);
      assert.equal(deliveries.body.total, (deliveries.body.data as unknown[]).length);
      assert.equal((await admin(t, 'get', '/api/v1/dead-letters')).body.total, 1 + (deliveries.body.data as unknown[]).length);
    } finally {
      await t.close();
      await failing.close();
      await errorHook.close();
    }
  });
});

describe('an SMTP server that stops answering', () => {
  it('holds an owner email no longer than DELIVERY_TIMEOUT, then lets the job fail with the reason', async () => {
    // Takes the message and never answers it, as a server stuck in DATA does.
    const stalled = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false, onData(stream) { stream.resume(); } });
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    const { port } = stalled.server.address() as AddressInfo;
    const failing = await Receiver.start(() => ({ status: 500, body: 'down' }));
    const t = await startOutboundService({ RETRY_SCHEDULE: 'none', DELIVERY_TIMEOUT: '1s', SMTP_URL: `smtp://127.0.0.1:${port}`, ALERT_EMAIL_TO: 'oncall@example.com', JOB_MAX_ATTEMPTS: '1' });
    try {
      await registerEndpoint(t, failing, ['broken.*']);
      // Six failures out of six: over 80 % with more than five, so the owners are emailed.
      for (let i = 0; i < 6; i++) await publish(t, 'broken.thing', { i });
      // Without a deadline the job would sit in its slot for nodemailer's ten-minute socket timeout.
      const listed = await waitFor('the email given up', async () => {
        const res = await admin(t, 'get', '/api/v1/dead-letters?queue=notifications');
        return (res.body.data as unknown[]).length > 0 ? res.body.data as { kind: string; last_error: string }[] : undefined;
      }, 20_000);
      assert.deepEqual(listed.map((job) => job.kind), ['notify.owner_email']);
      assert.equal(listed[0]?.last_error, 'the SMTP server did not take the email within 1000 ms');
      assert.ok(t.logs.find('notification failed; giving up').some((line) => line.kind === 'notify.owner_email'));
    } finally {
      await t.close();
      await failing.close();
      await new Promise<void>((resolve) => stalled.close(() => resolve()));
    }
  });
});
