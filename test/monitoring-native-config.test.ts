// scripts/lib/native-config.ts, run as scripts/monitoring.sh runs it (node --import tsx, from the
// checkout), from a copy of the checkout whose path holds a space.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { REPO, run, tempDir } from "./helpers/prom-tools.js";

describe("scripts/lib/native-config.ts", () => {
  it("writes the native copy when the checkout's path contains a space", async () => {
    const checkout = join(tempDir("native-config"), "hook watch");
    mkdirSync(join(checkout, "scripts/lib"), { recursive: true });
    cpSync(join(REPO, "scripts/lib/native-config.ts"), join(checkout, "scripts/lib/native-config.ts"));
    cpSync(join(REPO, "monitoring/prometheus"), join(checkout, "monitoring/prometheus"), { recursive: true });
    cpSync(join(REPO, "package.json"), join(checkout, "package.json"));
    symlinkSync(join(REPO, "node_modules"), join(checkout, "node_modules"));
    const output = join(checkout, ".monitoring/config/prometheus.yml");
    const spec = {
      services: ["hookwatch", "prometheus", "alertmanager", "node-exporter", "grafana", "loki", "jaeger", "mailpit"],
      targets: { "hookwatch:3000": "127.0.0.1:13000", "localhost:9090": "127.0.0.1:19090", "alertmanager:9093": "127.0.0.1:19093", "node-exporter:9100": "127.0.0.1:19100" },
      unavailable: ["grafana", "loki", "jaeger", "mailpit"],
    };

    const result = await run(process.execPath, ["--import", "tsx", "scripts/lib/native-config.ts", "prometheus", join(checkout, "monitoring/prometheus/prometheus.yml"), output, JSON.stringify(spec)], { cwd: checkout });

    assert.equal(result.code, 0, result.stderr);
    assert.ok(existsSync(output), `no configuration written (stdout: ${result.stdout}, stderr: ${result.stderr})`);
    assert.match(result.stdout, /hookwatch:3000 -> 127\.0\.0\.1:13000/);
    const config = parse(readFileSync(output, "utf8")) as { rule_files: string[] };
    assert.deepEqual(config.rule_files, [join(checkout, "monitoring/prometheus/rules/recording.yml"), join(checkout, "monitoring/prometheus/rules/alerts.yml")]);
  });
});
