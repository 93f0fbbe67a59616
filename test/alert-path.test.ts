// The alert path end to end: hookwatch under real trouble, Prometheus evaluating the repository's
// rules, Alertmanager routing with the repository's configuration, and what arrives at the email,
// Slack and PagerDuty stand-ins. The configuration is the one users run, changed only by the
// overlay in helpers/alert-overlay.ts (intervals, `for`, destinations).
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { Webhook } from "standardwebhooks";
import { AlertStack, DEMO_SECRET, SHOP_SECRET, STACK_ADMIN_TOKEN, type Received } from "./helpers/alert-stack.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

const text = (value: unknown): string => JSON.stringify(value);

describe("the alert path, end to end", { timeout: 300_000 }, () => {
  const stack = new AlertStack();
  let failed = false;
  let sink: Server;
  let sinkPort = 0;
  const hits: Record<string, number> = { a: 0, b: 0, c: 0 };

  before(async () => {
    // Endpoint stand-ins: /a fails every delivery, /b fails its first nine and then succeeds,
    // /c fails every delivery (it only ever gets five).
    sink = createServer((req, res) => {
      const name = (req.url ?? "/").slice(1);
      hits[name] = (hits[name] ?? 0) + 1;
      req.resume();
      const ok = name === "b" && (hits.b ?? 0) > 9;
      res.writeHead(ok ? 200 : 500, { "content-type": "text/plain" }).end(ok ? "ok" : "upstream exploded");
    });
    await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
    sinkPort = (sink.address() as { port: number }).port;
    await stack.start();
  });

  after(async () => {
    if (failed) process.stderr.write(`alert-path: component logs and everything received are in ${stack.saveLogs()}\n`);
    await stack.stop();
    sink.closeAllConnections();
    await new Promise<void>((resolve) => sink.close(() => resolve()));
  });

  const guard = (fn: () => Promise<void>) => async () => {
    try {
      await fn();
    } catch (error) {
      failed = true;
      throw error;
    }
  };

  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${stack.hookwatch?.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${STACK_ADMIN_TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
    return (await res.json()) as T;
  };

  /** Sends signed Standard Webhooks events to a source; `bad` of them carry a wrong signature. */
  async function inbound(source: string, secret: string, good: number, bad: number, type = "order.created"): Promise<void> {
    const signer = new Webhook(secret);
    const total = good + bad;
    const sends: Promise<Response>[] = [];
    for (let i = 0; i < total; i++) {
      // Spread the bad ones evenly, so the error ratio is the same whenever Prometheus scrapes.
      const isBad = Math.floor(((i + 1) * bad) / total) > Math.floor((i * bad) / total);
      const id = `msg_${source}_${Date.now()}_${i}`;
      const body = JSON.stringify({ type, data: { n: i } });
      const now = new Date();
      const signature = isBad ? "v1,aW52YWxpZC1zaWduYXR1cmUtZm9yLXRoaXMtYm9keQ==" : signer.sign(id, now, body);
      sends.push(fetch(`${stack.hookwatch?.url}/webhooks/${source}`, {
        method: "POST",
        headers: { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": String(Math.floor(now.getTime() / 1000)), "webhook-signature": signature },
        body,
      }));
    }
    const statuses = (await Promise.all(sends)).map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 202).length, good);
    assert.equal(statuses.filter((s) => s === 400).length, bad);
  }

  const firing = async (alertname: string, match: Record<string, string> = {}) =>
    (await stack.prometheusAlerts()).filter((a) => a.state === "firing" && a.labels.alertname === alertname && Object.entries(match).every(([k, v]) => a.labels[k] === v));

  const about = <T>(list: Received<T>[], ...needles: string[]) => list.filter((r) => needles.every((n) => text(r.body).includes(n)));
  const emailsAbout = (...needles: string[]) => stack.emails.filter((e) => e.body.to.includes("oncall@hookwatch.local") && needles.every((n) => text(e.body).includes(n)));

  it("1. an endpoint failing every delivery pages with the endpoint and the runbook; the owner email and error webhook arrive", guard(async () => {
    const create = (name: string, owner: string) => api<{ id: string; secret: string }>("POST", "/webhooks", {
      url: `http://127.0.0.1:${sinkPort}/${name}`, events: [`endpoint.${name}`], description: `alert-path ${name}`, owner_emails: [owner],
    });
    const a = await create("a", "owner-a@alert-path.test");
    const b = await create("b", "owner-b@alert-path.test");
    const c = await create("c", "owner-c@alert-path.test");
    const publish = async (name: string, count: number) => {
      for (let i = 0; i < count; i++) await api("POST", "/events", { type: `endpoint.${name}`, data: { n: i } });
    };
    await publish("a", 10);
    await publish("b", 10);
    await publish("c", 5);
    await until("every attempt counted in Prometheus", async () => {
      const rows = await stack.query("webhook_deliveries_total");
      const count = (id: string) => Number(rows.find((r) => r.metric.endpoint === id)?.value[1] ?? -1);
      return count(a.id) === 10 && count(b.id) === 10 && count(c.id) === 5;
    });

    // a: 10 of 10 failed; b: 9 of 10 (90 %, the boundary case for the 80 % threshold); c: 5 of 5.
    await until("WebhookDeliveryFailureRateHigh for endpoint a (100 % failed)", async () => (await firing("WebhookDeliveryFailureRateHigh", { endpoint: a.id })).length > 0);
    await until("WebhookDeliveryFailureRateHigh for endpoint b: 90 % failed must fire at the 80 % threshold", async () =>
      (await firing("WebhookDeliveryFailureRateHigh", { endpoint: b.id })).length > 0, 15_000);
    await sleep(4000);
    assert.deepEqual(await firing("WebhookDeliveryFailureRateHigh", { endpoint: c.id }), [], "5 failures out of 5 must not fire");

    const runbook = "runbook.md#webhookdeliveryfailureratehigh";
    const page = await until("the PagerDuty trigger for endpoint a", () => about(stack.pagerduty.received, "WebhookDeliveryFailureRateHigh", a.id).find((r) => r.body.event_action === "trigger"));
    assert.equal(page.body.routing_key, "test-routing-key-0123456789abcdef");
    assert.ok(text(page.body).includes(runbook), "the page carries the runbook link");
    const slack = await until("the Slack message for endpoint a", () => about(stack.slack.received, "WebhookDeliveryFailureRateHigh", a.id)[0]);
    assert.ok(text(slack.body).includes(runbook));
    const email = await until("the alert email for endpoint a", () => emailsAbout("WebhookDeliveryFailureRateHigh", a.id)[0]);
    assert.ok(text(email.body).includes(runbook));
    assert.equal(about(stack.pagerduty.received, c.id).length + about(stack.slack.received, c.id).length + emailsAbout(c.id).length, 0, "nothing about endpoint c");

    // hookwatch's own notifications: the owners' email and the error webhook.
    const owner = await until("hookwatch's owner email for endpoint a", () => stack.emails.find((e) => e.body.to.includes("owner-a@alert-path.test")));
    assert.ok(owner.body.text.includes(`http://127.0.0.1:${sinkPort}/a`), "the owner email names the endpoint");
    assert.equal(stack.emails.filter((e) => e.body.to.includes("owner-c@alert-path.test")).length, 0, "5 out of 5 sends no owner email");
    const streak = await until("the error webhook for endpoint a", () => stack.errorWebhook.received.find((r) => r.body.endpoint === `http://127.0.0.1:${sinkPort}/a`));
    assert.equal(streak.body.code, 500);
    assert.equal(typeof streak.body.message, "string");
  }));

  it("2. invalid signatures over the warning threshold only: email and Slack get the warning, PagerDuty nothing", guard(async () => {
    // 7 of 107 requests rejected: 6.5 %, above the 5 % warning and below the 10 % critical threshold.
    await inbound("demo", DEMO_SECRET, 100, 7);
    await until("WebhookErrorRateWarning for demo", async () => (await firing("WebhookErrorRateWarning", { source: "demo" })).length > 0);
    const slack = await until("the Slack warning", () => about(stack.slack.received, "WebhookErrorRateWarning", "demo")[0]);
    assert.ok(text(slack.body).includes("runbook.md#webhookerrorratewarning"));
    await until("the warning email", () => emailsAbout("WebhookErrorRateWarning", "demo")[0]);
    await sleep(3000);
    assert.deepEqual(about(stack.pagerduty.received, "WebhookErrorRateWarning"), [], "a warning never pages");
    assert.deepEqual(await firing("WebhookErrorRateCritical", { source: "demo" }), [], "6.5 % is below the critical threshold");
  }));

  it("4. a critical and a warning alert for the same cause: the warning is inhibited", guard(async () => {
    // Half the requests of source shop are rejected: both error-rate alerts fire for it.
    await inbound("shop", SHOP_SECRET, 10, 10);
    await until("both error-rate alerts firing for shop", async () =>
      (await firing("WebhookErrorRateCritical", { source: "shop" })).length > 0 && (await firing("WebhookErrorRateWarning", { source: "shop" })).length > 0);
    await until("the critical page for shop", () => about(stack.pagerduty.received, "WebhookErrorRateCritical", "shop")[0]);
    const res = await fetch(`${stack.alertmanager?.url}/api/v2/alerts?filter=${encodeURIComponent('alertname="WebhookErrorRateWarning"')}&filter=${encodeURIComponent('source="shop"')}`);
    const alerts = (await res.json()) as Array<{ status: { state: string; inhibitedBy: string[] } }>;
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]?.status.state, "suppressed");
    assert.ok((alerts[0]?.status.inhibitedBy.length ?? 0) > 0, "inhibited by the critical alert");
    await sleep(3000);
    assert.deepEqual([...about(stack.slack.received, "WebhookErrorRateWarning", "shop"), ...emailsAbout("WebhookErrorRateWarning", "shop")], []);
    assert.ok(about(stack.slack.received, "WebhookErrorRateCritical", "shop").length > 0);
  }));

  it("5. an info alert reaches Slack only", guard(async () => {
    await inbound("demo", DEMO_SECRET, 3, 0, "customer.tax_id.created");
    await until("WebhookUnlistedEventTypes for demo", async () => (await firing("WebhookUnlistedEventTypes", { source: "demo" })).length > 0);
    const slack = await until("the Slack info message", () => about(stack.slack.received, "WebhookUnlistedEventTypes")[0]);
    assert.ok(text(slack.body).includes("runbook.md#webhookunlistedeventtypes"));
    await sleep(3000);
    assert.deepEqual([...about(stack.pagerduty.received, "WebhookUnlistedEventTypes"), ...emailsAbout("WebhookUnlistedEventTypes")], []);
  }));

  it("3. hookwatch stopped: WebhookEndpointDown pages; started again, resolved notifications follow", guard(async () => {
    await stack.stopHookwatch();
    await until("WebhookEndpointDown firing", async () => (await firing("WebhookEndpointDown")).length > 0);
    await until("the page", () => about(stack.pagerduty.received, "WebhookEndpointDown").find((r) => r.body.event_action === "trigger"));
    await until("the Slack message", () => about(stack.slack.received, "WebhookEndpointDown")[0]);
    await until("the email", () => emailsAbout("WebhookEndpointDown")[0]);
    const slackBefore = about(stack.slack.received, "WebhookEndpointDown").length;
    const emailsBefore = emailsAbout("WebhookEndpointDown").length;

    await stack.startHookwatch();
    await until("the PagerDuty resolve", () => about(stack.pagerduty.received, "WebhookEndpointDown").find((r) => r.body.event_action === "resolve"), 90_000);
    await until("a resolved Slack message", () => about(stack.slack.received, "WebhookEndpointDown").length > slackBefore);
    await until("a resolved email", () => emailsAbout("WebhookEndpointDown").length > emailsBefore);
    const resolved = about(stack.slack.received, "WebhookEndpointDown").at(-1);
    assert.match(text(resolved?.body).toLowerCase(), /resolved/);
  }));
});
