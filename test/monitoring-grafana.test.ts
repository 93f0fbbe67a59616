// Grafana cannot run here: its provisioning and the generated dashboards are checked statically,
// and every panel query is parsed by promtool.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { renderDashboards } from "../monitoring/grafana/dashboards.js";
import { committedDashboards, concreteExpr, panelQueries, panelsOf } from "./helpers/prom-dashboards.js";
import { readRepoFile, requireBinary, run, tempDir } from "./helpers/prom-tools.js";

interface Datasource {
  name: string;
  uid: string;
  type: string;
  url: string;
  jsonData?: {
    exemplarTraceIdDestinations?: Array<{ name: string; datasourceUid: string }>;
    derivedFields?: Array<{ name: string; matcherRegex: string; datasourceUid: string; url: string }>;
    tracesToLogsV2?: { datasourceUid: string; filterByTraceID?: boolean };
    tracesToMetrics?: { datasourceUid: string };
    timeInterval?: string;
  };
}
interface FieldConfig {
  defaults?: { unit?: string; max?: number };
  overrides?: Array<{ matcher: { id: string; options?: unknown }; properties: Array<{ id: string; value?: unknown }> }>;
}

const datasources = (parse(readRepoFile("monitoring/grafana/provisioning/datasources/datasources.yml")) as { datasources: Datasource[] }).datasources;
const uids = new Set(datasources.map((d) => d.uid));
const byUid = (uid: string) => datasources.find((d) => d.uid === uid);

describe("grafana datasources", () => {
  it("provisions Prometheus, Loki and Jaeger with fixed uids and the compose addresses", () => {
    assert.deepEqual(
      datasources.map((d) => [d.uid, d.type, d.url]),
      [
        ["prometheus", "prometheus", "http://prometheus:9090"],
        ["loki", "loki", "http://loki:3100"],
        ["jaeger", "jaeger", "http://jaeger:16686"],
      ],
    );
  });

  it("links them both ways: exemplars and log trace ids to Jaeger, spans to Loki", () => {
    const exemplars = byUid("prometheus")?.jsonData?.exemplarTraceIdDestinations ?? [];
    assert.deepEqual(exemplars.map((e) => [e.name, e.datasourceUid]), [["trace_id", "jaeger"]]);
    const derived = byUid("loki")?.jsonData?.derivedFields ?? [];
    assert.equal(derived.length, 1);
    assert.equal(derived[0]?.datasourceUid, "jaeger");
    assert.equal(derived[0]?.url, "$${__value.raw}", "escaped from env expansion, the trace id as the link");
    const regex = new RegExp(derived[0]?.matcherRegex ?? "^$");
    const line = JSON.stringify({ level: "info", message: "delivered", trace_id: "4bf92f3577b34da6a3ce929d0e0e4736" });
    assert.equal(regex.exec(line)?.[1], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert.equal(byUid("jaeger")?.jsonData?.tracesToLogsV2?.datasourceUid, "loki");
    assert.equal(byUid("jaeger")?.jsonData?.tracesToLogsV2?.filterByTraceID, true);
    for (const ds of datasources) {
      const refs = [
        ...(ds.jsonData?.exemplarTraceIdDestinations ?? []).map((e) => e.datasourceUid),
        ...(ds.jsonData?.derivedFields ?? []).map((e) => e.datasourceUid),
        ds.jsonData?.tracesToLogsV2?.datasourceUid,
        ds.jsonData?.tracesToMetrics?.datasourceUid,
      ].filter((u): u is string => u !== undefined);
      for (const ref of refs) assert.ok(uids.has(ref), `${ds.name} links to unprovisioned ${ref}`);
    }
  });

  it("tells Grafana the scrape interval, which $__rate_interval is derived from", () => {
    const prometheusYml = parse(readRepoFile("monitoring/prometheus/prometheus.yml")) as { global: { scrape_interval: string } };
    assert.equal(byUid("prometheus")?.jsonData?.timeInterval, prometheusYml.global.scrape_interval);
  });
});

describe("grafana dashboards", () => {
  const committed = committedDashboards();

  it("committed JSON is what `npm run dashboards` generates (run it after editing monitoring/grafana/*.ts)", () => {
    const generated = renderDashboards();
    assert.deepEqual([...committed.keys()].sort(), [...generated.keys()].sort());
    for (const [file, content] of generated) {
      assert.equal(readRepoFile(`monitoring/grafana/dashboards/${file}`), content, `${file} is out of date: run npm run dashboards`);
    }
  });

  it("are provisioned from the directory compose mounts", () => {
    const provider = (parse(readRepoFile("monitoring/grafana/provisioning/dashboards/dashboards.yml")) as { providers: Array<{ type: string; options: { path: string } }> }).providers[0];
    assert.equal(provider?.type, "file");
    assert.equal(provider?.options.path, "/etc/grafana/dashboards");
    assert.match(readRepoFile("docker-compose.yml"), /\.\/monitoring\/grafana\/dashboards:\/etc\/grafana\/dashboards:ro/);
  });

  it("have fixed uids and the four contract topics", () => {
    const byUidMap = new Map([...committed.values()].map((d) => [d.uid, d]));
    assert.deepEqual([...byUidMap.keys()].sort(), ["hookwatch-deliveries", "hookwatch-events", "hookwatch-overview", "hookwatch-performance"]);
    const titles = (uid: string) => panelsOf(byUidMap.get(uid) ?? { uid, title: "", panels: [] }).map((p) => `${p.type}:${p.title ?? ""}`).join("\n");
    const need: Record<string, RegExp[]> = {
      "hookwatch-overview": [/Request rate/, /Error rate/, /Response time percentiles/, /Queue size/, /Processing time/, /^gauge:/m],
      "hookwatch-performance": [/^heatmap:Request latency/m, /Process memory/, /Process CPU/, /Database/, /Cache/],
      "hookwatch-events": [/Event type distribution/, /Processing success rate/, /Accepted events/, /Event queue/],
      "hookwatch-deliveries": [/Success rate by endpoint/, /Failures by reason/, /Retries/, /Endpoint up/, /Dead-letter queue/, /Sender lag/],
    };
    for (const [uid, patterns] of Object.entries(need)) for (const p of patterns) assert.match(titles(uid), p, uid);
  });

  it("give every panel a description, a unit and a provisioned datasource", () => {
    for (const d of committed.values()) {
      for (const p of panelsOf(d)) {
        const where = `${d.uid} / ${p.title ?? p.id}`;
        assert.ok((p.description ?? "").length > 20, `${where}: description`);
        assert.ok((p.fieldConfig?.defaults?.unit ?? "").length > 0, `${where}: unit`);
        assert.ok(uids.has(p.datasource?.uid ?? ""), `${where}: datasource`);
        assert.ok((p.targets ?? []).length > 0, `${where}: queries`);
        for (const t of p.targets ?? []) assert.ok(uids.has(t.datasource?.uid ?? ""), `${where}: query datasource`);
      }
      for (const v of d.templating?.list ?? []) assert.ok(uids.has(v.datasource?.uid ?? ""), `${d.uid}: variable ${v.name}`);
      const ids = panelsOf(d).map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length, `${d.uid}: unique panel ids`);
    }
  });

  it("show a series measured in seconds in a time unit, on its own axis beside counts", () => {
    // A metric in seconds read directly (a histogram's _bucket, _sum and _count do not end in _seconds).
    const inSeconds = /\b[a-z_:]+_seconds\b/;
    const timeUnits = new Set(["s", "ms", "dtdurations", "dtdurationms"]);
    for (const d of committed.values()) {
      for (const p of panelsOf(d)) {
        const fieldConfig = p.fieldConfig as FieldConfig | undefined;
        for (const t of p.targets ?? []) {
          if (!inSeconds.test(t.expr ?? "")) continue;
          const own = fieldConfig?.overrides?.find((o) => o.matcher.id === "byFrameRefID" && o.matcher.options === t.refId)?.properties ?? [];
          const unit = own.find((x) => x.id === "unit")?.value ?? fieldConfig?.defaults?.unit;
          const where = `${d.uid} / ${p.title ?? p.id} (${t.refId ?? ""}): ${t.expr ?? ""}`;
          assert.ok(typeof unit === "string" && timeUnits.has(unit), `${where} is in seconds but shown as ${String(unit)}`);
          if (fieldConfig?.defaults?.unit !== unit) {
            assert.equal(own.find((x) => x.id === "custom.axisPlacement")?.value, "right", `${where}: its own axis`);
          }
        }
      }
    }
  });

  it("draw no fixed maximum for CPU in percent of one core, which exceeds 100 % on more cores", () => {
    let seen = 0;
    for (const d of committed.values()) {
      for (const p of panelsOf(d)) {
        if (!(p.targets ?? []).some((t) => /\bwebhook_cpu_usage_percent\b/.test(t.expr ?? ""))) continue;
        seen++;
        const where = `${d.uid} / ${p.title ?? p.id}`;
        assert.equal((p.fieldConfig as FieldConfig | undefined)?.defaults?.max, undefined, `${where}: a max would clip the value`);
        assert.notEqual(p.type, "gauge", `${where}: a gauge without a max scales to its own value`);
        assert.match(p.description ?? "", /one core/, `${where}: says what 100 % is`);
      }
    }
    assert.ok(seen >= 2, "the overview and performance dashboards show process CPU");
  });

  it("use $__rate_interval for rates, except the deliberate 1h and $__range windows", () => {
    for (const q of panelQueries()) {
      for (const m of q.expr.matchAll(/\b(rate|increase|irate)\([^[]*\[([^\]]+)\]/g)) {
        assert.ok(["$__rate_interval", "$__range", "1h"].includes(m[2] ?? ""), `${q.dashboard} / ${q.panel}: window [${m[2] ?? ""}]`);
      }
    }
    for (const d of committed.values()) assert.match(JSON.stringify(d), /\$__rate_interval/, d.uid);
  });

  it("every panel query parses (promtool check rules)", async () => {
    const promtool = requireBinary("promtool");
    const queries = panelQueries();
    assert.ok(queries.length > 30);
    const rules = queries.map((q, i) => ({ record: `dashboard:query_${i}:check`, expr: concreteExpr(q.expr) }));
    const file = join(tempDir("grafana"), "queries.yml");
    writeFileSync(file, stringify({ groups: [{ name: "dashboard-queries", rules }] }));
    const result = await run(promtool, ["check", "rules", file]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
  });
});
