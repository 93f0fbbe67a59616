// `npm run dashboards`: regenerate monitoring/grafana/dashboards/*.json from the TypeScript sources.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { renderDashboards } from "./dashboards.js";

const dir = resolve(dirname(fileURLToPath(import.meta.url)), "dashboards");
mkdirSync(dir, { recursive: true });
for (const [file, content] of renderDashboards()) {
  writeFileSync(join(dir, file), content);
  console.log(`wrote ${join("monitoring/grafana/dashboards", file)}`);
}
