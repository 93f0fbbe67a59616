// The provisioned dashboards and their files under monitoring/grafana/dashboards/.
// `npm run dashboards` writes them; test/monitoring-grafana.test.ts fails when they are stale.
import type * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import { deliveries } from "./deliveries.js";
import { events } from "./events.js";
import { overview } from "./overview.js";
import { performance } from "./performance.js";

export const DASHBOARD_DIR = "monitoring/grafana/dashboards";

export const DASHBOARDS: ReadonlyArray<{ file: string; build: () => dashboard.Dashboard }> = [
  { file: "overview.json", build: overview },
  { file: "performance.json", build: performance },
  { file: "events.json", build: events },
  { file: "deliveries.json", build: deliveries },
];

/** File name -> file content, exactly as committed. */
export function renderDashboards(): Map<string, string> {
  const files = new Map<string, string>();
  for (const { file, build } of DASHBOARDS) files.set(file, `${JSON.stringify(build(), null, 2)}\n`);
  return files;
}
