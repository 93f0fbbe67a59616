// Building blocks for the hookwatch dashboards: the provisioned datasources, a Prometheus query,
// and one factory per panel type so that every panel gets a description, a unit and a datasource.
// Dashboards are generated with @grafana/grafana-foundation-sdk (pinned in package.json).
import type * as cog from "@grafana/grafana-foundation-sdk/cog";
import * as common from "@grafana/grafana-foundation-sdk/common";
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import * as gauge from "@grafana/grafana-foundation-sdk/gauge";
import * as heatmap from "@grafana/grafana-foundation-sdk/heatmap";
import * as piechart from "@grafana/grafana-foundation-sdk/piechart";
import * as prometheus from "@grafana/grafana-foundation-sdk/prometheus";
import * as stat from "@grafana/grafana-foundation-sdk/stat";
import * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";

/** Datasource uids provisioned in provisioning/datasources/datasources.yml. */
export const PROMETHEUS: common.DataSourceRef = { type: "prometheus", uid: "prometheus" };
export const LOKI: common.DataSourceRef = { type: "loki", uid: "loki" };
export const JAEGER: common.DataSourceRef = { type: "jaeger", uid: "jaeger" };

/** Dashboard uids: alert annotations (dashboard_path) and links point at them. */
export const UIDS = {
  overview: "hookwatch-overview",
  performance: "hookwatch-performance",
  events: "hookwatch-events",
  deliveries: "hookwatch-deliveries",
} as const;

export interface Query {
  expr: string;
  legend?: string;
  /** Ask Prometheus for exemplars (trace ids, linked to Jaeger). */
  exemplar?: boolean;
  format?: "heatmap";
  instant?: boolean;
  /**
   * Time series only: this query's unit when it differs from the panel's. Its series then get
   * their own axis on the right, so that seconds are not read off a count scale.
   */
  unit?: string;
}

export interface PanelSpec {
  title: string;
  description: string;
  unit: string;
  queries: Query[];
  width?: number;
  height?: number;
  min?: number;
  max?: number;
  /** Threshold steps above the base (green) step: [value, color]. */
  thresholds?: Array<[number, string]>;
  decimals?: number;
}

const REF_IDS = "ABCDEFGHIJ";

function targets(queries: Query[]): Array<cog.Builder<cog.Dataquery>> {
  return queries.map((q, i) => {
    const b = new prometheus.DataqueryBuilder()
      .datasource(PROMETHEUS)
      .refId(REF_IDS.charAt(i))
      .expr(q.expr)
      .legendFormat(q.legend ?? "__auto");
    if (q.exemplar === true) b.exemplar(true);
    if (q.format === "heatmap") b.format(prometheus.PromQueryFormat.Heatmap);
    if (q.instant === true) b.instant();
    else b.range();
    return b;
  });
}

function thresholds(spec: PanelSpec): dashboard.ThresholdsConfigBuilder {
  const steps: dashboard.Threshold[] = [{ value: null, color: "green" }];
  for (const [value, color] of spec.thresholds ?? []) steps.push({ value, color });
  return new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps(steps);
}

function legend(): common.VizLegendOptionsBuilder {
  return new common.VizLegendOptionsBuilder()
    .showLegend(true)
    .displayMode(common.LegendDisplayMode.List)
    .placement(common.LegendPlacement.Bottom);
}

function lastValue(): common.ReduceDataOptionsBuilder {
  return new common.ReduceDataOptionsBuilder().calcs(["lastNotNull"]).values(false);
}

export function timeseriesPanel(spec: PanelSpec): timeseries.PanelBuilder {
  const p = new timeseries.PanelBuilder()
    .title(spec.title)
    .description(spec.description)
    .datasource(PROMETHEUS)
    .unit(spec.unit)
    .targets(targets(spec.queries))
    .thresholds(thresholds(spec))
    .legend(legend())
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending))
    .lineWidth(1)
    .fillOpacity(10)
    .height(spec.height ?? 8)
    .span(spec.width ?? 12);
  if (spec.min !== undefined) p.min(spec.min);
  if (spec.max !== undefined) p.max(spec.max);
  if (spec.decimals !== undefined) p.decimals(spec.decimals);
  if (spec.thresholds !== undefined) {
    p.thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed));
  }
  spec.queries.forEach((q, i) => {
    if (q.unit === undefined || q.unit === spec.unit) return;
    p.overrideByQuery(REF_IDS.charAt(i), [
      { id: "unit", value: q.unit },
      { id: "custom.axisPlacement", value: "right" },
      { id: "custom.axisLabel", value: q.legend ?? q.unit },
    ]);
  });
  return p;
}

export function statPanel(spec: PanelSpec, mappings: dashboard.ValueMapping[] = []): stat.PanelBuilder {
  const p = new stat.PanelBuilder()
    .title(spec.title)
    .description(spec.description)
    .datasource(PROMETHEUS)
    .unit(spec.unit)
    .targets(targets(spec.queries))
    .thresholds(thresholds(spec))
    .reduceOptions(lastValue())
    .graphMode(common.BigValueGraphMode.Area)
    .colorMode(common.BigValueColorMode.Value)
    .height(spec.height ?? 4)
    .span(spec.width ?? 6);
  if (mappings.length > 0) p.mappings(mappings);
  if (spec.decimals !== undefined) p.decimals(spec.decimals);
  return p;
}

export function gaugePanel(spec: PanelSpec): gauge.PanelBuilder {
  const p = new gauge.PanelBuilder()
    .title(spec.title)
    .description(spec.description)
    .datasource(PROMETHEUS)
    .unit(spec.unit)
    .targets(targets(spec.queries))
    .thresholds(thresholds(spec))
    .reduceOptions(lastValue())
    .showThresholdMarkers(true)
    .height(spec.height ?? 6)
    .span(spec.width ?? 6);
  if (spec.min !== undefined) p.min(spec.min);
  if (spec.max !== undefined) p.max(spec.max);
  return p;
}

/** A latency heatmap from a histogram's buckets (query format "heatmap"). */
export function heatmapPanel(spec: PanelSpec): heatmap.PanelBuilder {
  return new heatmap.PanelBuilder()
    .title(spec.title)
    .description(spec.description)
    .datasource(PROMETHEUS)
    .unit(spec.unit)
    .targets(targets(spec.queries.map((q) => ({ ...q, format: "heatmap" as const, legend: q.legend ?? "{{le}}" }))))
    .calculate(false)
    .yAxis(new heatmap.YAxisConfigBuilder().unit(spec.unit))
    .color(new heatmap.HeatmapColorOptionsBuilder().mode(heatmap.HeatmapColorMode.Scheme).scheme("Oranges").steps(64))
    .cellGap(1)
    .showLegend()
    .height(spec.height ?? 9)
    .span(spec.width ?? 12);
}

export function piechartPanel(spec: PanelSpec): piechart.PanelBuilder {
  return new piechart.PanelBuilder()
    .title(spec.title)
    .description(spec.description)
    .datasource(PROMETHEUS)
    .unit(spec.unit)
    .targets(targets(spec.queries))
    .reduceOptions(lastValue())
    .pieType(piechart.PieChartType.Donut)
    .legend(
      new piechart.PieChartLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(common.LegendDisplayMode.Table)
        .placement(common.LegendPlacement.Right)
        .values([piechart.PieChartLegendValues.Value, piechart.PieChartLegendValues.Percent]),
    )
    .height(spec.height ?? 8)
    .span(spec.width ?? 12);
}

/** A multi-value template variable over a label of a metric; "All" matches every value. */
export function labelVariable(name: string, label: string, metric: string): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(PROMETHEUS)
    .query({ qryType: 1, query: `label_values(${metric}, ${name})`, refId: "PrometheusVariableQueryEditor-VariableQuery" })
    .definition(`label_values(${metric}, ${name})`)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue(".*")
    .current({ selected: true, text: ["All"], value: ["$__all"] });
}

/** Links between the four dashboards (by tag), shown at the top of each. */
export function dashboardLinks(): dashboard.DashboardLinkBuilder {
  return new dashboard.DashboardLinkBuilder("hookwatch")
    .type(dashboard.DashboardLinkType.Dashboards)
    .tags(["hookwatch"])
    .asDropdown(false)
    .includeVars(true)
    .keepTime(true);
}

/** A dashboard with the settings all four share. */
export function baseDashboard(uid: string, title: string, description: string): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(["hookwatch"])
    .editable()
    .refresh("30s")
    .time({ from: "now-6h", to: "now" })
    .timezone("browser")
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .link(dashboardLinks());
}

/**
 * Build a dashboard into plain JSON with stable panel ids (1, 2, ... in layout order), so that the
 * committed files only change when the dashboard does.
 */
export function finish(builder: dashboard.DashboardBuilder): dashboard.Dashboard {
  const built = builder.build();
  let id = 1;
  for (const panel of built.panels ?? []) {
    panel.id = id++;
    if (panel.type === "row" && "panels" in panel) {
      for (const inner of panel.panels) inner.id = id++;
    }
  }
  return built;
}
