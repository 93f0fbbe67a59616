// The committed Grafana dashboards as data: their panels and the PromQL each panel runs.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./prom-tools.js";

export const DASHBOARD_DIR = join(REPO, "monitoring/grafana/dashboards");

export interface PanelJson {
  id: number;
  type: string;
  title?: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: Array<{ refId?: string; expr?: string; datasource?: { type?: string; uid?: string } }>;
  panels?: PanelJson[];
}
export interface DashboardJson {
  uid: string;
  title: string;
  tags?: string[];
  panels: PanelJson[];
  templating?: { list: Array<{ name: string; datasource?: { uid?: string } }> };
}

export function committedDashboards(): Map<string, DashboardJson> {
  const out = new Map<string, DashboardJson>();
  for (const file of readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith(".json")).sort()) {
    out.set(file, JSON.parse(readFileSync(join(DASHBOARD_DIR, file), "utf8")) as DashboardJson);
  }
  return out;
}

/** Every visualisation panel (rows flattened away). */
export function panelsOf(d: DashboardJson): PanelJson[] {
  return d.panels.flatMap((p) => (p.type === "row" ? (p.panels ?? []) : [p]));
}

export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
}

export function panelQueries(): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const d of committedDashboards().values()) {
    for (const p of panelsOf(d)) {
      for (const t of p.targets ?? []) out.push({ dashboard: d.uid, panel: p.title ?? String(p.id), refId: t.refId ?? "", expr: t.expr ?? "" });
    }
  }
  return out;
}

/**
 * A panel's query as Grafana would send it: $__rate_interval and $__range replaced by durations,
 * multi-value template variables by their "All" value (.*).
 */
export function concreteExpr(expr: string, rateInterval = "1m", range = "1h"): string {
  return expr
    .replaceAll("$__rate_interval", rateInterval)
    .replaceAll("$__range", range)
    .replace(/\$(\w+)/g, ".*");
}
