// Prometheus configuration and rules, checked and unit-tested with the real promtool.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { REPO, alertRules, readRepoFile, recordingRules, requireBinary, run } from "./helpers/prom-tools.js";

const PROM_DIR = join(REPO, "monitoring/prometheus");
const TEST_DIR = join(PROM_DIR, "tests");
const testFiles = readdirSync(TEST_DIR).filter((f) => f.endsWith(".test.yml")).map((f) => join(TEST_DIR, f));

// The contract table of DESIGN.md plus the meta-monitoring alerts of issue 5.
const CONTRACT: Record<string, string> = {
  WebhookErrorRateCritical: "critical",
  WebhookErrorRateWarning: "warning",
  WebhookLatencyCritical: "critical",
  WebhookLatencyWarning: "warning",
  WebhookDatabaseDown: "critical",
  WebhookCacheDown: "critical",
  WebhookHostMemoryHigh: "warning",
  WebhookHostCpuHigh: "warning",
  WebhookDeliveryFailureRateHigh: "critical",
  WebhookDeliveryFailureVolumeHigh: "critical",
  WebhookEndpointDown: "critical",
  WebhookDeadLetterQueueGrowing: "warning",
  WebhookRateLimitApproaching: "warning",
  WebhookUnlistedEventTypes: "info",
  Watchdog: "none",
  TargetDown: "warning",
  AlertmanagerFailedToSendNotifications: "warning",
  PrometheusRuleEvaluationFailures: "warning",
};

/** GitHub's anchor for a Markdown heading. */
function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-");
}

describe("prometheus configuration", () => {
  it("promtool check config accepts prometheus.yml and the rule files it loads", async () => {
    const promtool = requireBinary("promtool");
    const result = await run(promtool, ["check", "config", join(PROM_DIR, "prometheus.yml")]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /rules\/alerts\.yml/);
    assert.match(result.stdout, /rules\/recording\.yml/);
  });

  it("scrapes hookwatch, node-exporter, itself, Alertmanager, Grafana, Loki and Jaeger", () => {
    const config = parse(readRepoFile("monitoring/prometheus/prometheus.yml")) as {
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
      alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> };
    };
    const jobs = new Map(config.scrape_configs.map((s) => [s.job_name, s.static_configs.flatMap((c) => c.targets)]));
    assert.deepEqual(jobs.get("hookwatch"), ["hookwatch:3000"]);
    for (const job of ["node", "prometheus", "alertmanager", "grafana", "loki", "jaeger"]) assert.ok(jobs.has(job), `scrape job ${job}`);
    assert.deepEqual(config.alerting.alertmanagers[0]?.static_configs[0]?.targets, ["alertmanager:9093"]);
  });

  it("promtool check rules accepts both rule files", async () => {
    const promtool = requireBinary("promtool");
    const result = await run(promtool, ["check", "rules", join(PROM_DIR, "rules/alerts.yml"), join(PROM_DIR, "rules/recording.yml")]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
  });

  it("promtool test rules passes every unit test file", async () => {
    const promtool = requireBinary("promtool");
    assert.ok(testFiles.length >= 2, "unit test files in monitoring/prometheus/tests");
    const result = await run(promtool, ["test", "rules", ...testFiles]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.doesNotMatch(result.stdout, /FAILED/);
  });
});

describe("alert rules", () => {
  const rules = alertRules();
  const runbook = readRepoFile("docs/runbook.md");
  const anchors = new Set([...runbook.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1] ?? "")));
  const dashboardUids = ["hookwatch-overview", "hookwatch-performance", "hookwatch-events", "hookwatch-deliveries"];

  it("has every alert of the contract with its severity, and no unnamed extra", () => {
    const bySeverity = Object.fromEntries(rules.map((r) => [r.alert, r.labels?.severity]));
    assert.deepEqual(bySeverity, CONTRACT);
  });

  it("gives every alert summary, description, runbook_url, dashboard_path and an alert_group", () => {
    for (const rule of rules) {
      for (const key of ["summary", "description", "runbook_url", "dashboard_path"]) {
        assert.ok((rule.annotations?.[key] ?? "").length > 0, `${rule.alert}: annotation ${key}`);
      }
      assert.match(rule.labels?.alert_group ?? "", /^[a-z_]+$/, `${rule.alert}: alert_group`);
      assert.match(rule.alert, /^(Webhook[A-Z]\w+|Watchdog|TargetDown|Alertmanager\w+|Prometheus\w+)$/);
    }
  });

  it("points every runbook_url at an existing section of docs/runbook.md", () => {
    for (const rule of rules) {
      const url = rule.annotations?.runbook_url ?? "";
      const [path, fragment] = url.split("#");
      assert.equal(path, "docs/runbook.md", rule.alert);
      assert.ok(fragment !== undefined && anchors.has(fragment), `${rule.alert}: no section #${fragment ?? ""} in docs/runbook.md`);
    }
  });

  it("points every dashboard_path at a provisioned dashboard", () => {
    for (const rule of rules) {
      const uid = /^\/d\/([\w-]+)/.exec(rule.annotations?.dashboard_path ?? "")?.[1];
      assert.ok(uid !== undefined && dashboardUids.includes(uid), `${rule.alert}: ${rule.annotations?.dashboard_path ?? ""}`);
    }
  });

  it("pairs critical and warning alerts of the same cause by alert_group", () => {
    const group = (name: string) => rules.find((r) => r.alert === name)?.labels?.alert_group;
    assert.equal(group("WebhookErrorRateCritical"), group("WebhookErrorRateWarning"));
    assert.equal(group("WebhookLatencyCritical"), group("WebhookLatencyWarning"));
    assert.equal(group("WebhookEndpointDown"), group("TargetDown"));
  });

  it("keeps the contract thresholds plainly in the expressions", () => {
    const expr = (name: string) => rules.find((r) => r.alert === name)?.expr ?? "";
    assert.match(expr("WebhookErrorRateCritical"), /> 0\.10\b/);
    assert.match(expr("WebhookErrorRateWarning"), /> 0\.05\b/);
    assert.match(expr("WebhookLatencyCritical"), /> 1\b/);
    assert.match(expr("WebhookLatencyWarning"), /> 0\.5\b/);
    assert.match(expr("WebhookDeliveryFailureRateHigh"), /> 5\b[\s\S]*> 0\.8\b/);
    assert.match(expr("WebhookDeliveryFailureVolumeHigh"), /> 50\b/);
    assert.match(expr("WebhookRateLimitApproaching"), /> 0\.8 \*/);
    assert.match(expr("WebhookHostMemoryHigh"), /> 0\.85\b/);
    assert.match(expr("WebhookHostCpuHigh"), /> 0\.75\b/);
    assert.doesNotMatch(expr("WebhookDeliveryFailureRateHigh") + expr("WebhookDeliveryFailureVolumeHigh"), /increase\(|rate\(/, "delivery rules must not extrapolate");
  });

  it("unit-tests every alert with a firing and a not-firing case", () => {
    interface AlertTest {
      alertname: string;
      exp_alerts?: unknown[];
    }
    const cases = testFiles.flatMap((file) => {
      const doc = parse(readRepoFile(file.slice(REPO.length + 1))) as { tests: Array<{ alert_rule_test?: AlertTest[] }> };
      return doc.tests.flatMap((t) => t.alert_rule_test ?? []);
    });
    for (const rule of rules) {
      const mine = cases.filter((c) => c.alertname === rule.alert);
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${rule.alert}: no firing case`);
      if (rule.alert !== "Watchdog") assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${rule.alert}: no not-firing case`);
    }
  });
});

describe("recording rules", () => {
  it("are named level:metric:operations", () => {
    const rules = recordingRules();
    assert.ok(rules.length > 0);
    for (const rule of rules) assert.match(rule.record, /^[a-z_]*:[a-z_]+:[a-z0-9_]+$/, rule.record);
  });
});
