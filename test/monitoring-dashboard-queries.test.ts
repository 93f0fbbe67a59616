// Every dashboard panel's query, run through a real Prometheus that scrapes a real hookwatch under
// traffic (inbound Standard Webhooks, good and bad; outbound deliveries to a healthy and a failing
// endpoint) and a real node-exporter, with the repository's recording rules loaded.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Webhook } from "standardwebhooks";
import { parse, stringify } from "yaml";
import { concreteExpr, panelQueries } from "./helpers/prom-dashboards.js";
import { GiveUp, REPO, freePort, readRepoFile, requireBinary, startDaemon, startPrometheus, tempDir, waitFor, type Daemon } from "./helpers/prom-tools.js";

const SECRET = `whsec_${Buffer.from("hookwatch-dashboard-query-test-key").toString("base64")}`;
const ADMIN_TOKEN = "dashboard-query-test-admin-token";

interface PromResponse {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ value?: [number, string]; values?: unknown[] }> };
}

async function query(prom: Daemon, expr: string): Promise<PromResponse> {
  const res = await fetch(`${prom.url}/api/v1/query`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ query: expr }),
  });
  return (await res.json()) as PromResponse;
}

async function scalar(prom: Daemon, expr: string): Promise<number | undefined> {
  const r = await query(prom, expr);
  const v = r.data?.result[0]?.value?.[1];
  return v === undefined ? undefined : Number(v);
}

describe("dashboard queries against Prometheus scraping hookwatch", () => {
  let hookwatch: ChildProcess | undefined;
  let hookwatchLog = "";
  let sink: Server | undefined;
  let prom: Daemon | undefined;
  let nodeExporter: Daemon | undefined;
  let sent = 0;

  before(async () => {
    assert.ok(existsSync(join(REPO, "src/main.ts")), "src/main.ts is needed to start hookwatch");
    requireBinary("prometheus");

    // An endpoint that accepts deliveries on /ok and fails them on /fail.
    sink = createServer((req, res) => {
      req.resume();
      res.statusCode = req.url === "/ok" ? 200 : 500;
      res.end();
    });
    sink.listen(0, "127.0.0.1");
    await once(sink, "listening");
    const sinkAddress = sink.address();
    const sinkPort = typeof sinkAddress === "object" && sinkAddress !== null ? sinkAddress.port : 0;

    const port = await freePort();
    const dataDir = tempDir("hookwatch-data");
    hookwatch = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: REPO,
      env: {
        PATH: process.env.PATH ?? "",
        HOST: "127.0.0.1",
        PORT: String(port),
        DATA_DIR: dataDir,
        ADMIN_TOKEN,
        WEBHOOK_SECRET_DEMO: SECRET,
        ALLOW_PRIVATE_DESTINATIONS: "true",
        RETRY_SCHEDULE: "1s,1s",
        LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    hookwatch.stdout?.setEncoding("utf8").on("data", (c: string) => (hookwatchLog += c));
    hookwatch.stderr?.setEncoding("utf8").on("data", (c: string) => (hookwatchLog += c));
    const base = `http://127.0.0.1:${port}`;
    await waitFor("hookwatch /metrics", async () => {
      if (hookwatch?.exitCode !== null) throw new GiveUp(`hookwatch exited:\n${hookwatchLog}`);
      return (await fetch(`${base}/metrics`)).ok ? true : undefined;
    });

    const nodePort = await freePort();
    nodeExporter = await startDaemon(requireBinary("prometheus-node-exporter"), [`--web.listen-address=127.0.0.1:${nodePort}`], `http://127.0.0.1:${nodePort}`, "/metrics");

    // The repository's prometheus.yml, pointed at the local targets, scraping and evaluating every second.
    const dir = tempDir("prom");
    const config = parse(readRepoFile("monitoring/prometheus/prometheus.yml")) as Record<string, unknown>;
    config.global = { scrape_interval: "1s", evaluation_interval: "1s", external_labels: { stack: "hookwatch-test" } };
    config.rule_files = [join(REPO, "monitoring/prometheus/rules/recording.yml"), join(REPO, "monitoring/prometheus/rules/alerts.yml")];
    delete config.alerting;
    config.scrape_configs = [
      { job_name: "hookwatch", static_configs: [{ targets: [`127.0.0.1:${port}`] }] },
      { job_name: "node", static_configs: [{ targets: [`127.0.0.1:${nodePort}`] }] },
    ];
    writeFileSync(join(dir, "prometheus.yml"), stringify(config));
    prom = await startPrometheus(join(dir, "prometheus.yml"), join(dir, "data"), await freePort());
    const p = prom;
    await waitFor("first scrapes of hookwatch", async () => ((await scalar(p, 'count_over_time(up{job="hookwatch"}[1m])')) ?? 0) >= 3 ? true : undefined);

    // Traffic: endpoints (one healthy, one failing), inbound events good and bad, outbound events.
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
    for (const path of ["/ok", "/fail"]) {
      const res = await fetch(`${base}/api/v1/webhooks`, { method: "POST", headers: admin, body: JSON.stringify({ url: `http://127.0.0.1:${sinkPort}${path}`, events: ["*"] }) });
      assert.equal(res.status, 201, await res.text());
    }
    const wh = new Webhook(SECRET);
    const post = async (body: string, headers: Record<string, string>) => {
      sent++;
      const res = await fetch(`${base}/webhooks/demo`, { method: "POST", headers, body });
      await res.arrayBuffer();
      return res.status;
    };
    let n = 0;
    const wave = async () => {
      for (let i = 0; i < 15; i++, n++) {
        const id = `msg_dashboard_${n}`;
        const now = new Date();
        const body = JSON.stringify({ type: n % 3 === 0 ? "invoice.paid" : "user.created", timestamp: now.toISOString(), data: { n } });
        const status = await post(body, { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": String(Math.floor(now.getTime() / 1000)), "webhook-signature": wh.sign(id, now, body) });
        assert.ok(status === 202 || status === 200, `signed event answered ${status}`);
      }
      for (let i = 0; i < 3; i++) {
        const now = new Date();
        const status = await post("{}", { "content-type": "application/json", "webhook-id": `msg_bad_${n}_${i}`, "webhook-timestamp": String(Math.floor(now.getTime() / 1000)), "webhook-signature": "v1,AAAA" });
        assert.ok(status >= 400 && status < 500, `bad signature answered ${status}`);
      }
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${base}/api/v1/events`, { method: "POST", headers: admin, body: JSON.stringify({ type: "order.created", data: { n, i } }) });
        assert.equal(res.status, 202, await res.text());
      }
    };
    // Two waves with a scrape in between: a series born in the first wave has a sample before the
    // second, so rate() over the dashboards' window sees it grow.
    await wave();
    await waitFor("first wave scraped", async () => ((await scalar(p, "sum(webhook_requests_total)")) ?? 0) >= sent ? true : undefined);
    await waitFor("first processing scraped", async () => ((await scalar(p, "sum(webhook_events_processed_total)")) ?? 0) > 0 ? true : undefined);
    await wave();

    // Until Prometheus has seen every request, a delivery failure, and a retry; then one more
    // minute-window of samples exists for rate() over 1m.
    await waitFor("requests scraped", async () => ((await scalar(p, "sum(webhook_requests_total)")) ?? 0) >= sent ? true : undefined);
    await waitFor("processing scraped", async () => ((await scalar(p, "sum(increase(webhook_events_processed_total[1m]))")) ?? 0) > 0 ? true : undefined);
    await waitFor("deliveries scraped", async () => ((await scalar(p, "sum(webhook_delivery_retries_total)")) ?? 0) > 0 ? true : undefined);
    await waitFor("recording rules evaluated", async () => ((await scalar(p, "count(instance:node_cpu_utilisation:rate5m)")) ?? 0) > 0 ? true : undefined);
  });

  after(async () => {
    await prom?.stop();
    await nodeExporter?.stop();
    if (hookwatch && hookwatch.exitCode === null) {
      const exited = once(hookwatch, "exit");
      hookwatch.kill("SIGTERM");
      await exited;
    }
    sink?.close();
  });

  it("every panel query parses and returns data", async () => {
    assert.ok(prom);
    const queries = panelQueries();
    const empty: string[] = [];
    for (const q of queries) {
      const expr = concreteExpr(q.expr, "1m", "5m");
      const r = await query(prom, expr);
      assert.equal(r.status, "success", `${q.dashboard} / ${q.panel} (${q.refId}): ${r.error ?? ""}\n${expr}`);
      const hasData = (r.data?.result ?? []).some((s) => s.value !== undefined && !Number.isNaN(Number(s.value[1])));
      if (!hasData) empty.push(`${q.dashboard} / ${q.panel} (${q.refId}): ${expr}`);
    }
    assert.deepEqual(empty, [], `panels without data:\n${empty.join("\n")}`);
  });
});
