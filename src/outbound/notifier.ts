import nodemailer, { type Transporter } from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import type { Clock } from '../clock.js';
import { backoffDelay, type BackoffPolicy } from '../jobs/backoff.js';
import type { Job, JobScheduler } from '../jobs/queue.js';
import type { JobResult } from '../jobs/worker.js';
import type { QueueName } from '../telemetry/metrics.js';
import type { Logger } from '../telemetry/logger.js';
import type { HttpSender } from './http-sender.js';
import type { EmailMessage, ErrorWebhookBody } from './messages.js';

export const ERROR_WEBHOOK_JOB = 'notify.error_webhook';
export const OWNER_EMAIL_JOB = 'notify.owner_email';
export const NOTIFICATION_QUEUE: QueueName = 'notifications';
/**
 * Notifications are few; a handful of slots, each held at most DELIVERY_TIMEOUT (an email as an
 * error webhook), keeps a slow SMTP server from holding up the error webhook for long.
 */
export const NOTIFICATION_CONCURRENCY = 4;

export interface NotifierOptions {
  errorWebhookUrl: string | null;
  smtpUrl: string | null;
  from: string;
  /** ALERT_EMAIL_TO: copied on every owner email. */
  alwaysTo: readonly string[];
  timeoutMs: number;
  maxAttempts: number;
  backoff: BackoffPolicy;
}

/**
 * The same on every try of one notification: a try cut short by a crash after the receiver got
 * it is made again after the restart, and this is what lets the receiver drop the copy (the
 * error webhook's Idempotency-Key, the email's Message-ID). The creation time keeps it unique
 * should the database be started afresh and job ids begin again.
 */
export function notificationId(job: Pick<Job, 'id' | 'createdAt'>): string {
  return `ntf_${job.createdAt.toString(36)}_${job.id}`;
}

/**
 * Sends the error webhook and owner emails. A notification is queued as a job in the same
 * transaction as the failure-monitor state that decided it, so a crash neither loses it
 * (the job survives) nor decides it twice (the state says it was decided); the job is retried
 * with backoff while the SMTP server or the error webhook is unreachable. Sending is at least
 * once: a crash between the receiver getting it and the job's commit sends it again, with the
 * same notificationId.
 */
export class Notifier {
  private transport: Transporter | null = null;

  constructor(
    private readonly options: NotifierOptions,
    private readonly jobs: JobScheduler,
    private readonly sender: HttpSender,
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {}

  /** Call inside the transaction that recorded the deciding attempt. */
  queueErrorWebhook(endpointId: string, body: ErrorWebhookBody, requestId: string | null): void {
    if (!this.options.errorWebhookUrl) {
      this.logger.info('error webhook not sent: ERROR_WEBHOOK_URL is not set', { request_id: requestId ?? undefined, endpoint: endpointId, code: body.code });
      return;
    }
    this.jobs.enqueue({ queue: NOTIFICATION_QUEUE, kind: ERROR_WEBHOOK_JOB, ref: endpointId, payload: { body }, maxAttempts: this.options.maxAttempts, requestId });
  }

  /** Call inside the transaction that recorded the deciding attempt. `message.to` are the owners. */
  queueEmail(endpointId: string, message: EmailMessage, requestId: string | null): void {
    const to = [...new Set([...message.to, ...this.options.alwaysTo])];
    if (to.length === 0 || !this.options.smtpUrl) {
      this.logger.warn('owner email not sent', { request_id: requestId ?? undefined, endpoint: endpointId, subject: message.subject, why: to.length === 0 ? 'no owner emails and no ALERT_EMAIL_TO' : 'SMTP_URL is not set' });
      return;
    }
    this.jobs.enqueue({ queue: NOTIFICATION_QUEUE, kind: OWNER_EMAIL_JOB, ref: endpointId, payload: { message: { ...message, to } }, maxAttempts: this.options.maxAttempts, requestId });
  }

  run = async (job: Job): Promise<JobResult> => {
    try {
      const id = notificationId(job);
      if (job.kind === ERROR_WEBHOOK_JOB) await this.postErrorWebhook(id, job.payload?.body as ErrorWebhookBody);
      else await this.sendEmail(id, job.payload?.message as EmailMessage);
      this.logger.info('notification sent', { kind: job.kind, endpoint: job.ref, attempt: job.attempts });
      return { outcome: 'done' };
    } catch (error) {
      const message = (error as Error).message;
      if (job.attempts >= job.maxAttempts) {
        this.logger.error('notification failed; giving up', { kind: job.kind, endpoint: job.ref, attempt: job.attempts, error: message });
        return { outcome: 'dead', error: message };
      }
      const delay = backoffDelay(this.options.backoff, job.attempts);
      this.logger.warn('notification failed; will retry', { kind: job.kind, endpoint: job.ref, attempt: job.attempts, retry_in_ms: delay, error: message });
      return { outcome: 'retry', runAt: this.clock.now() + delay, error: message };
    }
  };

  private async postErrorWebhook(id: string, body: ErrorWebhookBody): Promise<void> {
    const url = this.options.errorWebhookUrl;
    if (!url) return;
    // The operator configured this URL, so the private-destination rule does not apply to it.
    const result = await this.sender.send({ url, headers: { 'idempotency-key': id }, body: JSON.stringify(body), timeoutMs: this.options.timeoutMs, allowPrivate: true });
    // Named by its origin alone: the message reaches logs and the dead-letter list, and services
    // such as Slack or Discord carry the hook's secret in the URL's path. (The URL passed config.)
    if (!result.ok) throw new Error(`error webhook ${new URL(url).origin}: ${result.error ?? 'failed'}`);
  }

  private async sendEmail(id: string, message: EmailMessage): Promise<void> {
    if (!this.options.smtpUrl) return;
    this.transport ??= nodemailer.createTransport(this.options.smtpUrl);
    // One deadline for the whole exchange, as for the error webhook: nodemailer otherwise waits
    // out ten minutes of silence, and a server that stalls would hold a notification slot that
    // long, and with NOTIFICATION_CONCURRENCY emails every error webhook behind them.
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    // nodemailer takes the signal; its type definitions do not know it yet.
    const mail: Mail.Options & { signal: AbortSignal } = { from: this.options.from, to: message.to, subject: message.subject, text: message.text, messageId: `<${id}@hookwatch>`, signal };
    try {
      await this.transport.sendMail(mail);
    } catch (error) {
      if (signal.aborted) throw new Error(`the SMTP server did not take the email within ${this.options.timeoutMs} ms`);
      throw error;
    }
  }

  close(): void {
    this.transport?.close();
    this.transport = null;
  }
}
