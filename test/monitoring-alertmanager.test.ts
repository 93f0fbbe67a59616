// Alertmanager configuration: checked with amtool, routes proven with `amtool config routes test`,
// templates rendered with amtool, and inhibition observed on a real Alertmanager.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { REPO, alertRules, freePort, requireBinary, run, startAlertmanager, tempDir, type Daemon } from "./helpers/prom-tools.js";

const AM_DIR = join(REPO, "monitoring/alertmanager");
const SECRETS = ["slack_webhook_url", "pagerduty_routing_key", "smtp_password"];

/**
 * A runnable copy of the repository's Alertmanager configuration: the same file with the
 * container paths (/etc/alertmanager/...) pointed at a temporary directory holding the templates
 * and dummy secret files, as `scripts/monitoring.sh init` would write them.
 */
function stageConfig(): { dir: string; config: string } {
  const dir = tempDir("am");
  cpSync(join(AM_DIR, "templates"), join(dir, "templates"), { recursive: true });
  mkdirSync(join(dir, "secrets"));
  writeFileSync(join(dir, "secrets/slack_webhook_url"), "http://127.0.0.1:9/slack\n");
  writeFileSync(join(dir, "secrets/pagerduty_routing_key"), "dummy-routing-key\n");
  writeFileSync(join(dir, "secrets/smtp_password"), "dummy\n");
  const text = readFileSync(join(AM_DIR, "alertmanager.yml"), "utf8").replaceAll("/etc/alertmanager/", `${dir}/`);
  const config = join(dir, "alertmanager.yml");
  writeFileSync(config, text);
  return { dir, config };
}

const RECEIVERS_BY_SEVERITY: Record<string, string[]> = {
  critical: ["pagerduty", "email", "slack"],
  warning: ["email", "slack"],
  info: ["slack"],
  none: ["heartbeat"],
};

async function routeTest(config: string, labels: Record<string, string>, receivers: string[]): Promise<void> {
  const amtool = requireBinary("amtool");
  const args = ["config", "routes", "test", `--config.file=${config}`, `--verify.receivers=${receivers.join(",")}`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)];
  const result = await run(amtool, args);
  assert.equal(result.code, 0, `${JSON.stringify(labels)} should reach ${receivers.join(",")}: ${result.stdout}${result.stderr}`);
}

describe("alertmanager configuration", () => {
  it("holds no secret: every credential is read from a file under /etc/alertmanager/secrets", () => {
    const text = readFileSync(join(AM_DIR, "alertmanager.yml"), "utf8");
    assert.doesNotMatch(text, /hooks\.slack\.com|api_url:|routing_key:|service_key:|auth_password:/);
    for (const secret of SECRETS) assert.match(text, new RegExp(`_file: /etc/alertmanager/secrets/${secret}\\b`));
    assert.match(readFileSync(join(REPO, ".gitignore"), "utf8"), /^monitoring\/alertmanager\/secrets\/$/m);
  });

  it("amtool check-config accepts it", async () => {
    const amtool = requireBinary("amtool");
    const { config } = stageConfig();
    const result = await run(amtool, ["check-config", config]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS/);
  });

  it("routes the cases of monitoring/alertmanager/tests/routes.yml", async () => {
    const { config } = stageConfig();
    const cases = (parse(readFileSync(join(AM_DIR, "tests/routes.yml"), "utf8")) as { cases: Array<{ name: string; labels: Record<string, string>; receivers: string[] }> }).cases;
    assert.ok(cases.length >= 4);
    for (const c of cases) await routeTest(config, c.labels, c.receivers);
  });

  it("routes every alert of alerts.yml by its severity", async () => {
    const { config } = stageConfig();
    for (const rule of alertRules()) {
      const severity = rule.labels?.severity ?? "";
      const receivers = RECEIVERS_BY_SEVERITY[severity];
      assert.ok(receivers !== undefined, `${rule.alert}: unknown severity ${severity}`);
      await routeTest(config, { alertname: rule.alert, ...rule.labels }, receivers);
    }
  });

  it("fails the route test when the receivers are wrong (the check has teeth)", async () => {
    const amtool = requireBinary("amtool");
    const { config } = stageConfig();
    const result = await run(amtool, ["config", "routes", "test", `--config.file=${config}`, "--verify.receivers=slack", "severity=critical"]);
    assert.notEqual(result.code, 0);
  });
});

describe("notification templates", () => {
  const data = {
    receiver: "slack",
    status: "firing",
    alerts: [
      {
        status: "firing",
        labels: { alertname: "WebhookDeliveryFailureRateHigh", severity: "critical", alert_group: "delivery_failures", endpoint: "ep_abc123", grafana_url: "https://grafana.example.com", runbook_base_url: "https://git.example.com/hookwatch/blob/main/" },
        annotations: {
          summary: "Deliveries to endpoint ep_abc123 are failing",
          description: "100% of the delivery attempts to endpoint ep_abc123 in the last hour failed.",
          runbook_url: "docs/runbook.md#webhookdeliveryfailureratehigh",
          dashboard_path: "/d/hookwatch-deliveries/hookwatch-deliveries",
        },
        startsAt: "2026-01-01T00:00:00Z",
        endsAt: "0001-01-01T00:00:00Z",
        generatorURL: "http://prometheus:9090/graph",
        fingerprint: "0123456789abcdef",
      },
    ],
    groupLabels: { alertname: "WebhookDeliveryFailureRateHigh" },
    commonLabels: { alertname: "WebhookDeliveryFailureRateHigh", severity: "critical", alert_group: "delivery_failures", endpoint: "ep_abc123" },
    commonAnnotations: { summary: "Deliveries to endpoint ep_abc123 are failing" },
    externalURL: "http://127.0.0.1:9093",
  };

  async function render(template: string, type: "text" | "html" = "text"): Promise<string> {
    const amtool = requireBinary("amtool");
    const dir = tempDir("tmpl");
    const dataFile = join(dir, "data.json");
    writeFileSync(dataFile, JSON.stringify(data));
    const result = await run(amtool, ["template", "render", `--template.glob=${join(AM_DIR, "templates")}/*.tmpl`, `--template.data=${dataFile}`, `--template.type=${type}`, `--template.text={{ template "${template}" . }}`]);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  }

  for (const [template, type] of [["hookwatch.slack.text", "text"], ["hookwatch.email.text", "text"], ["hookwatch.email.html", "html"]] as const) {
    it(`${template} carries summary, description, severity, runbook and dashboard links`, async () => {
      const out = await render(template, type);
      assert.match(out, /Deliveries to endpoint ep_abc123 are failing/);
      assert.match(out, /100% of the delivery attempts/);
      assert.match(out, /critical/);
      assert.match(out, /https:\/\/git\.example\.com\/hookwatch\/blob\/main\/docs\/runbook\.md#webhookdeliveryfailureratehigh/);
      assert.match(out, /https:\/\/grafana\.example\.com\/d\/hookwatch-deliveries\/hookwatch-deliveries/);
    });
  }

  it("titles the notification with status, count, severity, alert and subject", async () => {
    assert.equal((await render("hookwatch.title")).trim(), "[FIRING:1] CRITICAL WebhookDeliveryFailureRateHigh (endpoint=ep_abc123)");
  });
});

describe("inhibition on a real Alertmanager", () => {
  let am: Daemon | undefined;
  before(async () => {
    const { dir, config } = stageConfig();
    am = await startAlertmanager(config, join(dir, "data"), await freePort(), await freePort());
  });
  after(async () => {
    await am?.stop();
  });

  it("mutes a warning while the critical alert of the same cause and subject fires, and only that one", async () => {
    assert.ok(am);
    const alert = (alertname: string, severity: string, source: string) => ({
      labels: { alertname, severity, alert_group: "error_rate", source },
      annotations: { summary: alertname },
    });
    const posted = await fetch(`${am.url}/api/v2/alerts`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([
        alert("WebhookErrorRateCritical", "critical", "stripe"),
        alert("WebhookErrorRateWarning", "warning", "stripe"),
        alert("WebhookErrorRateWarning", "warning", "github"),
      ]),
    });
    assert.equal(posted.status, 200);
    const alerts = (await (await fetch(`${am.url}/api/v2/alerts`)).json()) as Array<{ labels: Record<string, string>; status: { state: string; inhibitedBy: string[] } }>;
    const state = (name: string, source: string) => alerts.find((a) => a.labels.alertname === name && a.labels.source === source)?.status;
    assert.equal(state("WebhookErrorRateCritical", "stripe")?.state, "active");
    assert.equal(state("WebhookErrorRateWarning", "stripe")?.state, "suppressed");
    assert.equal(state("WebhookErrorRateWarning", "stripe")?.inhibitedBy.length, 1);
    assert.equal(state("WebhookErrorRateWarning", "github")?.state, "active");
  });
});
