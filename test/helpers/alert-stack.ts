// Starts the alerting stack natively for the alert-path test: hookwatch (as a child process),
// Prometheus, Alertmanager and node-exporter from Debian's packages with the overlaid repository
// configuration, a real SMTP server, and HTTP stand-ins for Slack, PagerDuty and hookwatch's
// error webhook that record what they receive.
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { join } from "node:path";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { spawnService, type ChildService } from "./child.js";
import { writeOverlay, type StackPorts } from "./alert-overlay.js";
import { REPO, freePort, requireBinary, startAlertmanager, startDaemon, startPrometheus, tempDir, type Daemon } from "./prom-tools.js";

export interface Email {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
}

export interface Received<T> {
  at: number;
  body: T;
}

/** Records every JSON POST it receives; answers 200 (or what `answer` says). */
class Recorder<T> {
  readonly received: Received<T>[] = [];
  private server: Server | null = null;

  async start(port: number): Promise<void> {
    this.server = createServer((req, res) => {
      void readBody(req).then((text) => {
        try {
          this.received.push({ at: Date.now(), body: JSON.parse(text) as T });
        } catch {
          this.received.push({ at: Date.now(), body: text as unknown as T });
        }
        res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(port, "127.0.0.1", resolve));
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

/** Slack's incoming-webhook payload as Alertmanager sends it (the fields the test reads). */
export interface SlackMessage {
  attachments: Array<{ title?: string; title_link?: string; text?: string; color?: string; actions?: Array<{ text?: string; url?: string }> }>;
}

/** PagerDuty Events API v2 payload as Alertmanager sends it. */
export interface PagerDutyEvent {
  routing_key: string;
  event_action: "trigger" | "resolve";
  dedup_key: string;
  payload?: { summary: string; severity: string; custom_details?: Record<string, string> };
  links?: Array<{ href: string; text: string }>;
}

export interface ErrorWebhookBody {
  code: number;
  endpoint: string;
  message: string;
}

export const STACK_ADMIN_TOKEN = "alert-path-admin-token-0123456789";
export const DEMO_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
export const SHOP_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

export class AlertStack {
  readonly dir = tempDir("alert-path");
  readonly emails: Received<Email>[] = [];
  readonly slack = new Recorder<SlackMessage>();
  readonly pagerduty = new Recorder<PagerDutyEvent>();
  readonly errorWebhook = new Recorder<ErrorWebhookBody>();
  ports!: StackPorts & { errorWebhook: number };
  hookwatch: ChildService | null = null;
  prometheus: Daemon | null = null;
  alertmanager: Daemon | null = null;
  nodeExporter: Daemon | null = null;
  private smtp: SMTPServer | null = null;

  async start(): Promise<void> {
    for (const binary of ["prometheus", "prometheus-alertmanager", "prometheus-node-exporter"]) requireBinary(binary);
    this.ports = {
      prometheus: await freePort(), alertmanager: await freePort(), hookwatch: await freePort(), nodeExporter: await freePort(),
      smtp: await freePort(), slack: await freePort(), pagerduty: await freePort(), errorWebhook: await freePort(),
    };
    await this.startSmtp();
    await this.slack.start(this.ports.slack);
    await this.pagerduty.start(this.ports.pagerduty);
    await this.errorWebhook.start(this.ports.errorWebhook);
    const files = writeOverlay(this.dir, this.ports);
    this.nodeExporter = await startDaemon(
      requireBinary("prometheus-node-exporter"),
      [`--web.listen-address=127.0.0.1:${this.ports.nodeExporter}`, "--collector.disable-defaults", "--collector.cpu", "--collector.meminfo", "--collector.loadavg"],
      `http://127.0.0.1:${this.ports.nodeExporter}`, "/metrics",
    );
    await this.startHookwatch();
    this.alertmanager = await startAlertmanager(files.alertmanager, join(this.dir, "am-data"), this.ports.alertmanager, await freePort());
    this.prometheus = await startPrometheus(files.prometheus, join(this.dir, "prom-data"), this.ports.prometheus);
  }

  async startHookwatch(): Promise<void> {
    this.hookwatch = await spawnService({
      PORT: String(this.ports.hookwatch),
      DATA_DIR: join(this.dir, "hookwatch-data"),
      ADMIN_TOKEN: STACK_ADMIN_TOKEN,
      WEBHOOK_SECRET_DEMO: DEMO_SECRET,
      WEBHOOK_SECRET_SHOP: SHOP_SECRET,
      ALLOW_PRIVATE_DESTINATIONS: "true",
      RETRY_SCHEDULE: "none",
      DELIVERY_TIMEOUT: "2s",
      JOB_POLL_INTERVAL: "50ms",
      SMTP_URL: `smtp://127.0.0.1:${this.ports.smtp}`,
      ALERT_EMAIL_FROM: "hookwatch@alert-path.test",
      ERROR_WEBHOOK_URL: `http://127.0.0.1:${this.ports.errorWebhook}/hookwatch-errors`,
      EVENT_TYPE_ALLOWLIST: "order.created,order.paid,endpoint.a,endpoint.b,endpoint.c",
    });
  }

  async stopHookwatch(): Promise<void> {
    await this.hookwatch?.kill("SIGTERM");
  }

  private async startSmtp(): Promise<void> {
    this.smtp = new SMTPServer({
      disabledCommands: ["AUTH", "STARTTLS"],
      authOptional: true,
      logger: false,
      onData: (stream, _session, callback) => {
        simpleParser(stream)
          .then((mail) => {
            const to = (Array.isArray(mail.to) ? mail.to : mail.to ? [mail.to] : []).flatMap((a) => a.value.map((v) => v.address ?? ""));
            this.emails.push({ at: Date.now(), body: { from: mail.from?.text ?? "", to, subject: mail.subject ?? "", text: mail.text ?? "", html: typeof mail.html === "string" ? mail.html : "" } });
            callback();
          })
          .catch((error: Error) => callback(error));
      },
    });
    await new Promise<void>((resolve) => this.smtp?.listen(this.ports.smtp, "127.0.0.1", resolve));
  }

  async query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
    const res = await fetch(`${this.prometheus?.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    return body.data.result;
  }

  /** Alerts Prometheus currently has, by name and state. */
  async prometheusAlerts(): Promise<Array<{ labels: Record<string, string>; state: string }>> {
    const res = await fetch(`${this.prometheus?.url}/api/v1/alerts`);
    return ((await res.json()) as { data: { alerts: Array<{ labels: Record<string, string>; state: string }> } }).data.alerts;
  }

  /** Writes every component's output to test-output/alert-path/ for a reader after a failure. */
  saveLogs(): string {
    const out = join(REPO, "test-output", "alert-path");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "prometheus.log"), this.prometheus?.output() ?? "(not started)");
    writeFileSync(join(out, "alertmanager.log"), this.alertmanager?.output() ?? "(not started)");
    writeFileSync(join(out, "node-exporter.log"), this.nodeExporter?.output() ?? "(not started)");
    writeFileSync(join(out, "hookwatch.log"), this.hookwatch?.output.join("\n") ?? "(not started)");
    writeFileSync(join(out, "received.json"), JSON.stringify({ emails: this.emails, slack: this.slack.received, pagerduty: this.pagerduty.received, errorWebhook: this.errorWebhook.received }, null, 2));
    return out;
  }

  async stop(): Promise<void> {
    await Promise.allSettled([this.prometheus?.stop(), this.alertmanager?.stop(), this.nodeExporter?.stop(), this.hookwatch?.kill("SIGKILL")]);
    await Promise.allSettled([this.slack.stop(), this.pagerduty.stop(), this.errorWebhook.stop()]);
    await new Promise<void>((resolve) => (this.smtp ? this.smtp.close(() => resolve()) : resolve()));
  }
}
