// The two delivery-failure alerts count whole failures "whenever Prometheus happens to scrape and
// evaluate" (DESIGN.md). This test generates promtool unit tests over many combinations of scrape
// interval, evaluation interval and failure timing, and checks the alert state at EVERY evaluation
// against an exact model: the failures seen by the last scrape, minus those seen by the last
// scrape an hour earlier (all of them while the series is younger than an hour).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { stringify } from "yaml";
import { REPO, requireBinary, run, tempDir } from "./helpers/prom-tools.js";

const HOUR = 3600;
const END = 3 * HOUR; // seconds of simulated time per scenario

interface Scenario {
  name: string;
  /** Failure times in seconds; every attempt fails, so attempts == failures. */
  failures: number[];
  /** The property the contract states for this scenario. */
  expect: "never-rate" | "fires-rate" | "never-volume" | "fires-volume";
}

const spaced = (start: number, count: number, gap: number) => Array.from({ length: count }, (_, i) => start + i * gap);

function scenarios(phase: number): Scenario[] {
  return [
    // Inside the first hour the series is younger than the window.
    { name: "young5", failures: spaced(300 + phase, 5, 433), expect: "never-rate" },
    { name: "young6", failures: spaced(300 + phase, 6, 433), expect: "fires-rate" },
    { name: "five", failures: spaced(4200 + phase, 5, 433), expect: "never-rate" },
    { name: "six", failures: spaced(4200 + phase, 6, 433), expect: "fires-rate" },
    // 6 failures, but the first and the last are more than an hour apart.
    { name: "sixspread", failures: spaced(4200 + phase, 6, 735), expect: "never-rate" },
    { name: "fifty", failures: spaced(4200 + phase, 50, 11), expect: "never-volume" },
    { name: "fiftyone", failures: spaced(4200 + phase, 51, 11), expect: "fires-volume" },
    // 51 failures spread over 65 minutes: never more than 50 within an hour.
    { name: "fiftyonespread", failures: spaced(2400 + phase, 51, 78), expect: "never-volume" },
  ];
}

/** Failures seen by Prometheus at evaluation time t (scrapes every s seconds from 0). */
function observed(failures: number[], s: number, t: number): number {
  const seen = (x: number) => failures.filter((f) => f <= Math.floor(x / s) * s).length;
  return seen(t) - (t - HOUR < 0 ? 0 : seen(t - HOUR));
}

const RATE = "WebhookDeliveryFailureRateHigh";
const VOLUME = "WebhookDeliveryFailureVolumeHigh";

function expectedAlert(alertname: string, endpoint: string, count: number) {
  const dashboard_path = "/d/hookwatch-deliveries/hookwatch-deliveries";
  if (alertname === RATE) {
    return {
      exp_labels: { severity: "critical", alert_group: "delivery_failures", endpoint },
      exp_annotations: {
        summary: `Deliveries to endpoint ${endpoint} are failing`,
        description: `100% of the delivery attempts to endpoint ${endpoint} in the last hour failed (more than 80 %, and more than 5 failures).`,
        runbook_url: "docs/runbook.md#webhookdeliveryfailureratehigh",
        dashboard_path,
      },
    };
  }
  return {
    exp_labels: { severity: "critical", alert_group: "delivery_volume", endpoint },
    exp_annotations: {
      summary: `More than 50 failed deliveries to endpoint ${endpoint} in an hour`,
      description: `${count} delivery attempts to endpoint ${endpoint} failed in the last hour (threshold: more than 50).`,
      runbook_url: "docs/runbook.md#webhookdeliveryfailurevolumehigh",
      dashboard_path,
    },
  };
}

/**
 * One promtool test file for an evaluation interval: a group per scrape interval holding every
 * scenario as its own endpoint (one rule evaluation serves them all), checked at every evaluation.
 */
function buildTestFile(evalInterval: number, scrapeIntervals: number[], phase: number): { doc: object; checks: number } {
  let checks = 0;
  const tests = [];
  for (const s of scrapeIntervals) {
    const input_series = [];
    const expected = new Map<string, Map<string, ReturnType<typeof expectedAlert>[]>>([
      [RATE, new Map()],
      [VOLUME, new Map()],
    ]);
    for (const sc of scenarios(phase)) {
      const endpoint = `ep_${sc.name}`;
      const values: number[] = [];
      for (let t = 0; t <= END; t += s) values.push(sc.failures.filter((f) => f <= t).length);
      const series = values.join(" ");
      input_series.push(
        { series: `webhook_delivery_failures_total{endpoint="${endpoint}",reason="http_5xx"}`, values: series },
        { series: `webhook_deliveries_total{endpoint="${endpoint}"}`, values: series },
      );
      let firedRate = false;
      let firedVolume = false;
      for (let t = 0; t <= END; t += evalInterval) {
        const count = observed(sc.failures, s, t);
        // Every attempt fails, so the rate rule fires exactly when there are more than 5.
        for (const [alertname, threshold] of [[RATE, 5], [VOLUME, 50]] as const) {
          const byTime = expected.get(alertname);
          assert.ok(byTime !== undefined);
          const list = byTime.get(`${t}s`) ?? [];
          if (count > threshold) {
            list.push(expectedAlert(alertname, endpoint, count));
            if (alertname === RATE) firedRate = true;
            else firedVolume = true;
          }
          byTime.set(`${t}s`, list);
        }
      }
      // The model itself must honour the contract, or the scenario proves nothing.
      const fired = sc.expect.endsWith("rate") ? firedRate : firedVolume;
      assert.equal(fired, sc.expect.startsWith("fires"), `${sc.name} with scrape ${s}s / eval ${evalInterval}s`);
    }
    const alert_rule_test = [];
    for (const [alertname, byTime] of expected) {
      for (const [eval_time, exp_alerts] of byTime) alert_rule_test.push({ eval_time, alertname, exp_alerts });
    }
    checks += alert_rule_test.length;
    tests.push({ name: `scrape every ${s}s, evaluate every ${evalInterval}s, phase ${phase}s`, interval: `${s}s`, input_series, alert_rule_test });
  }
  return {
    doc: {
      rule_files: [join(REPO, "monitoring/prometheus/rules/alerts.yml"), join(REPO, "monitoring/prometheus/rules/recording.yml")],
      evaluation_interval: `${evalInterval}s`,
      tests,
    },
    checks,
  };
}

describe("delivery-failure alerts count whole failures at every scrape/evaluation phase", { concurrency: true }, () => {
  const configs: Array<{ evalInterval: number; scrapeIntervals: number[]; phase: number }> = [
    { evalInterval: 17, scrapeIntervals: [15, 60], phase: 7 },
    { evalInterval: 60, scrapeIntervals: [37], phase: 41 },
    { evalInterval: 23, scrapeIntervals: [30], phase: 0 },
  ];
  for (const config of configs) {
    it(`evaluation every ${config.evalInterval}s, scrapes every ${config.scrapeIntervals.join("/")}s, failures offset by ${config.phase}s`, { concurrency: true }, async () => {
      const promtool = requireBinary("promtool");
      const { doc, checks } = buildTestFile(config.evalInterval, config.scrapeIntervals, config.phase);
      const file = join(tempDir("sweep"), "sweep.test.yml");
      writeFileSync(file, stringify(doc, { lineWidth: 0 }));
      const result = await run(promtool, ["test", "rules", file]);
      assert.equal(result.code, 0, `${checks} checks; promtool says:\n${result.stdout.slice(0, 4000)}${result.stderr}`);
    });
  }
});
