import { Router } from 'express';
import { z } from 'zod';
import { HttpError, notFound } from '../http/errors.js';
import type { Job, JobQueue } from '../jobs/queue.js';
import { QUEUES } from '../telemetry/metrics.js';
import { limitParam, parseWith, queryOf } from './query.js';

/** How a module that owns a kind of job describes it and reacts when it is replayed. */
export interface DeadLetterHooks {
  describe(job: Job): Record<string, unknown>;
  replayed(job: Job): void;
}

const listQuery = z.object({
  queue: z.enum(QUEUES).optional(),
  limit: limitParam,
  after: z.coerce.number().int().min(0).default(0),
}).strict();

const jobId = z.coerce.number().int().positive();

export function deadLettersRouter(jobs: JobQueue, hooks: ReadonlyMap<string, DeadLetterHooks>): Router {
  const router = Router();

  const present = (job: Job) => ({
    id: job.id,
    queue: job.queue,
    kind: job.kind,
    ref: job.ref,
    attempts: job.attempts,
    last_error: job.lastError,
    request_id: job.requestId,
    created_at: new Date(job.createdAt).toISOString(),
    dead_since: new Date(job.updatedAt).toISOString(),
    ...hooks.get(job.kind)?.describe(job),
  });

  const findDead = (raw: string): Job => {
    const job = jobs.get(parseWith(jobId, raw, 'dead-letter id'));
    if (!job || job.status !== 'dead') throw notFound(`dead-lettered job ${raw}`);
    return job;
  };

  router.get('/dead-letters', (req, res) => {
    const query = parseWith(listQuery, queryOf(req), 'query');
    const found = jobs.listDead(query.queue ?? null, query.limit, query.after);
    const last = found.length === query.limit ? found[found.length - 1] : undefined;
    res.json({ data: found.map(present), next_after: last ? last.id : null, total: jobs.deadCount(query.queue ?? null) });
  });

  router.get('/dead-letters/:id', (req, res) => {
    res.json(present(findDead(req.params.id)));
  });

  /** For a change: a job that is there but not dead (replayed already, or never dead) is a conflict, not unknown. */
  const findDeadToChange = (raw: string): Job => {
    const job = jobs.get(parseWith(jobId, raw, 'dead-letter id'));
    if (!job) throw notFound(`dead-lettered job ${raw}`);
    if (job.status !== 'dead') throw new HttpError(409, 'conflict', `job ${job.id} is ${job.status}, not dead-lettered: only a dead letter can be replayed or deleted`);
    return job;
  };

  router.post('/dead-letters/:id/replay', (req, res) => {
    const job = findDeadToChange(req.params.id);
    if (!jobs.replay(job.id)) throw new HttpError(409, 'conflict', `job ${job.id} is no longer dead-lettered`);
    hooks.get(job.kind)?.replayed(job);
    res.status(202).json({ replayed: true, id: job.id });
  });

  router.delete('/dead-letters/:id', (req, res) => {
    const job = findDeadToChange(req.params.id);
    if (!jobs.deleteDead(job.id)) throw new HttpError(409, 'conflict', `job ${job.id} is no longer dead-lettered`);
    res.status(204).end();
  });

  return router;
}
