// The overlay that turns the repository's own Prometheus and Alertmanager configuration into the
// configuration of the alert-path test. It changes only what a test must change, and every change
// is listed here:
//
// Prometheus (monitoring/prometheus/prometheus.yml)
//   1. scrape and evaluation intervals of 1 s (scrape timeout 1 s), so alerts move in seconds;
//   2. targets point at the processes the test started on 127.0.0.1 instead of compose host names;
//      jobs with no local binary (grafana, loki, jaeger) are left out, or TargetDown would fire;
//   3. external labels get fixed values instead of ${VAR} placeholders from .env;
//   4. rule_files point at the overlaid copies of the two rule files.
// Rules (monitoring/prometheus/rules/recording.yml and alerts.yml)
//   5. every `for:` becomes FOR (2 s); expressions, thresholds, labels and annotations are untouched,
//      so a threshold changed in the repository changes what the test sees.
// Alertmanager (monitoring/alertmanager/alertmanager.yml)
//   6. group_wait 1 s and group_interval 2 s on every route, so notifications (and resolved ones)
//      follow within seconds; repeat intervals stay as they are;
//   7. destinations point at local stand-ins: the SMTP smarthost, the Slack webhook URL and the
//      PagerDuty routing key (via the secret files the config already reads) and PagerDuty's API URL;
//   8. templates are read from the repository's templates directory.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { REPO, readRepoFile } from "./prom-tools.js";

export const FOR = "2s";

export interface StackPorts {
  prometheus: number;
  alertmanager: number;
  hookwatch: number;
  nodeExporter: number;
  smtp: number;
  slack: number;
  pagerduty: number;
}

interface ScrapeConfig {
  job_name: string;
  static_configs?: Array<{ targets: string[] }>;
  [key: string]: unknown;
}

interface PrometheusConfig {
  global: Record<string, unknown> & { external_labels?: Record<string, string> };
  rule_files: string[];
  alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> };
  scrape_configs: ScrapeConfig[];
}

interface Rule {
  alert?: string;
  record?: string;
  for?: string;
  [key: string]: unknown;
}

interface RouteConfig {
  group_wait?: string;
  group_interval?: string;
  routes?: RouteConfig[];
  [key: string]: unknown;
}

interface ReceiverConfig {
  name: string;
  pagerduty_configs?: Array<Record<string, unknown>>;
  slack_configs?: Array<Record<string, unknown>>;
  email_configs?: Array<Record<string, unknown>>;
}

interface AlertmanagerConfig {
  global: Record<string, unknown>;
  templates: string[];
  route: RouteConfig;
  receivers: ReceiverConfig[];
  [key: string]: unknown;
}

export const EXTERNAL_LABELS = { grafana_url: "http://grafana.test:3001", runbook_base_url: "https://runbooks.test/hookwatch/", environment: "alert-path-test" };

/** Writes the overlaid configuration into `dir` and returns the two config file paths. */
export function writeOverlay(dir: string, ports: StackPorts): { prometheus: string; alertmanager: string } {
  const ruleFiles = ["recording.yml", "alerts.yml"].map((name) => {
    const rules = parse(readRepoFile(`monitoring/prometheus/rules/${name}`)) as { groups: Array<{ rules: Rule[] }> };
    for (const group of rules.groups) for (const rule of group.rules) if (rule.for !== undefined) rule.for = FOR;
    const file = join(dir, name);
    writeFileSync(file, stringify(rules));
    return file;
  });

  const prom = parse(readRepoFile("monitoring/prometheus/prometheus.yml")) as PrometheusConfig;
  prom.global.scrape_interval = "1s";
  prom.global.scrape_timeout = "1s";
  prom.global.evaluation_interval = "1s";
  prom.global.external_labels = { ...prom.global.external_labels, ...EXTERNAL_LABELS };
  prom.rule_files = ruleFiles;
  prom.alerting.alertmanagers = [{ static_configs: [{ targets: [`127.0.0.1:${ports.alertmanager}`] }] }];
  const local: Record<string, number> = { hookwatch: ports.hookwatch, node: ports.nodeExporter, prometheus: ports.prometheus, alertmanager: ports.alertmanager };
  prom.scrape_configs = prom.scrape_configs
    .filter((job) => local[job.job_name] !== undefined)
    .map((job) => ({ ...job, static_configs: [{ targets: [`127.0.0.1:${local[job.job_name]}`] }] }));
  const missing = Object.keys(local).filter((name) => !prom.scrape_configs.some((job) => job.job_name === name));
  if (missing.length > 0) throw new Error(`prometheus.yml has no scrape job named ${missing.join(", ")}`);
  const promFile = join(dir, "prometheus.yml");
  writeFileSync(promFile, stringify(prom));

  const am = parse(readRepoFile("monitoring/alertmanager/alertmanager.yml")) as AlertmanagerConfig;
  am.global.smtp_smarthost = `127.0.0.1:${ports.smtp}`;
  am.templates = [join(REPO, "monitoring/alertmanager/templates/*.tmpl")];
  const fastRoutes = (route: RouteConfig): void => {
    route.group_wait = "1s";
    route.group_interval = "2s";
    for (const child of route.routes ?? []) fastRoutes(child);
  };
  fastRoutes(am.route);
  const secret = (name: string, value: string): string => {
    const file = join(dir, name);
    writeFileSync(file, value);
    return file;
  };
  for (const receiver of am.receivers) {
    for (const pd of receiver.pagerduty_configs ?? []) {
      pd.routing_key_file = secret("pagerduty_routing_key", "test-routing-key-0123456789abcdef");
      pd.url = `http://127.0.0.1:${ports.pagerduty}/v2/enqueue`;
    }
    for (const slack of receiver.slack_configs ?? []) {
      slack.api_url_file = secret("slack_webhook_url", `http://127.0.0.1:${ports.slack}/services/T000/B000/XXXX`);
    }
    for (const email of receiver.email_configs ?? []) {
      email.auth_password_file = secret("smtp_password", "unused-by-the-local-smtp-server");
    }
  }
  const amFile = join(dir, "alertmanager.yml");
  writeFileSync(amFile, stringify(am));
  return { prometheus: promFile, alertmanager: amFile };
}
