import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { SqliteJobQueue } from '../src/jobs/sqlite-queue.js';
import { Publisher } from '../src/outbound/publisher.js';
import { openDatabase } from '../src/store/db.js';
import { emptyHealth, type MinuteBucket } from '../src/store/endpoint-health.js';
import { Store } from '../src/store/store.js';
import { createLogger } from '../src/telemetry/logger.js';
import { tempDir } from './helpers/service.js';

const noObserver = { lookup: () => undefined, operation: () => undefined };

function openStore(): Store {
  return Store.open(path.join(tempDir(), 'rollback.db'), 'normal', { now: () => Date.now() }, () => undefined, noObserver);
}

function addEndpoint(store: Store, id: string): void {
  store.endpoints.create({ id, url: `https://example.com/${id}`, events: ['*'], description: '', ownerEmails: [], secret: 'whsec_c2VjcmV0' });
}

describe('the store after a rollback', () => {
  it('forgets an endpoint change cached by a grouped call that failed, and keeps its neighbours in the group', async () => {
    const store = openStore();
    try {
      addEndpoint(store, 'ep_a');
      addEndpoint(store, 'ep_b');
      const neighbour = store.grouped(() => store.endpoints.disable('ep_b', 'gone'));
      const failing = store.grouped(() => {
        store.endpoints.disable('ep_a', 'never happened');
        // Read back inside the failing call: the cache now holds the disabled endpoint.
        assert.notEqual(store.endpoints.get('ep_a')?.disabledAt, null);
        throw new Error('the call fails after the change');
      });
      await assert.rejects(failing, /the call fails/);
      assert.equal(await neighbour, true, 'the other call of the group committed');
      assert.equal(store.endpoints.get('ep_a')?.disabledAt, null, 'the rolled-back change is not served from the cache');
      assert.notEqual(store.endpoints.get('ep_b')?.disabledAt, null);
    } finally {
      await store.close();
    }
  });

  it('forgets an endpoint change cached by a transaction that rolled back', async () => {
    const store = openStore();
    try {
      addEndpoint(store, 'ep_c');
      assert.throws(() => store.transaction(() => {
        store.endpoints.disable('ep_c', 'never happened');
        assert.notEqual(store.endpoints.get('ep_c')?.disabledAt, null);
        throw new Error('rolled back');
      }), /rolled back/);
      assert.equal(store.endpoints.get('ep_c')?.disabledAt, null);
    } finally {
      await store.close();
    }
  });
});

describe('the parked deliveries of an endpoint', () => {
  const newDelivery = (store: Store, id: string, endpointId: string, parked: boolean) =>
    store.deliveries.insert({ id, eventPk: `evt_${id}`, endpointId, parked, requestId: null });

  it('are found once one parks, after the endpoint was seen with none', async () => {
    const store = openStore();
    try {
      assert.equal(store.deliveries.oldestParked('ep_p'), null);
      newDelivery(store, 'dlv_1', 'ep_p', true);
      assert.equal(store.deliveries.oldestParked('ep_p')?.id, 'dlv_1', 'a delivery inserted parked');
      store.deliveries.unpark('dlv_1', 1);
      assert.equal(store.deliveries.oldestParked('ep_p'), null);
      newDelivery(store, 'dlv_2', 'ep_p', false);
      store.deliveries.park('dlv_2', 'ep_p');
      assert.equal(store.deliveries.oldestParked('ep_p')?.id, 'dlv_2', 'a delivery parked later');
    } finally {
      await store.close();
    }
  });

  it('are found again after a transaction that released them rolled back', async () => {
    const store = openStore();
    try {
      newDelivery(store, 'dlv_3', 'ep_q', true);
      await assert.rejects(store.grouped(() => {
        store.deliveries.unpark('dlv_3', 1);
        assert.equal(store.deliveries.oldestParked('ep_q'), null, 'none left inside the transaction');
        throw new Error('rolled back');
      }), /rolled back/);
      assert.equal(store.deliveries.oldestParked('ep_q')?.id, 'dlv_3');
    } finally {
      await store.close();
    }
  });
});

describe('a just-queued delivery', () => {
  const queue = (store: Store, id: string, endpointId = 'ep_z') => {
    store.deliveries.insertQueued({ id, eventPk: `evt_${id}`, endpointId, requestId: null, jobId: 7 });
  };

  it('is read once from memory, exactly as the table holds it', async () => {
    const store = openStore();
    try {
      queue(store, 'dlv_m');
      const first = store.deliveries.get('dlv_m');
      const fromTable = store.deliveries.get('dlv_m');
      assert.equal(first?.jobId, 7);
      assert.deepEqual(first, fromTable);
    } finally {
      await store.close();
    }
  });

  it('is read as every later write left it', async () => {
    const store = openStore();
    try {
      const writes: [string, (id: string) => void, (d: ReturnType<Store['deliveries']['get']>) => unknown, unknown][] = [
        ['setStatus', (id) => store.deliveries.setStatus(id, 'failed', 'no'), (d) => d?.status, 'failed'],
        ['park', (id) => store.deliveries.park(id, 'ep_z'), (d) => d?.parked, true],
        ['unpark', (id) => store.deliveries.unpark(id, 9), (d) => d?.jobId, 9],
        ['requeue', (id) => store.deliveries.requeue(id, 11), (d) => d?.jobId, 11],
        ['cancelForEndpoint', () => store.deliveries.cancelForEndpoint('ep_z'), (d) => d?.status, 'cancelled'],
      ];
      for (const [name, write, read, expected] of writes) {
        const id = `dlv_${name}`;
        queue(store, id);
        write(id);
        assert.deepEqual(read(store.deliveries.get(id)), expected, name);
      }
      queue(store, 'dlv_attempt', 'ep_y');
      const read = store.deliveries.forEvent('evt_dlv_attempt')[0];
      assert.ok(read);
      const attempt = { trigger: 'scheduled' as const, at: 1, durationMs: 1, ok: true, statusCode: 200, reason: null, error: null, responseBody: null };
      assert.ok(store.deliveries.recordAttempt(read, attempt, { status: 'delivered', scheduleStep: 1, nextAttemptAt: null }));
      assert.equal(store.deliveries.get('dlv_attempt')?.attempts, 1, 'recordAttempt');
    } finally {
      await store.close();
    }
  });

  it('is forgotten when the transaction that queued it rolls back', async () => {
    const store = openStore();
    try {
      assert.throws(() => store.transaction(() => {
        queue(store, 'dlv_gone');
        throw new Error('rolled back');
      }), /rolled back/);
      assert.equal(store.deliveries.get('dlv_gone'), null);
    } finally {
      await store.close();
    }
  });
});

describe('the database files', () => {
  it('are private to the service\'s user: they hold every endpoint\'s signing secret', () => {
    const dir = path.join(tempDir(), 'private', 'data');
    const file = path.join(dir, 'hookwatch.db');
    const db = openDatabase({ file, synchronous: 'normal' });
    try {
      db.prepare('CREATE TABLE probe_write (x)').run();
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700, 'the data directory it created');
      for (const name of [file, `${file}-wal`, `${file}-shm`]) {
        assert.equal(fs.statSync(name).mode & 0o077, 0, `${path.basename(name)} has no group or other access`);
      }
    } finally {
      db.close();
    }
  });
});

describe('forwarding an event that already has its deliveries', () => {
  it('creates nothing the second time, and leaves no job or lease behind', async () => {
    const store = openStore();
    const clock = { now: () => Date.now() };
    const jobs = new SqliteJobQueue(store.db, clock, () => undefined);
    const logger = createLogger({ level: 'error', service: 'hookwatch', environment: 'test', stream: new Writable({ write(_chunk, _encoding, done) { done(); } }) });
    const publisher = new Publisher(store, jobs, logger, clock, { maxAttempts: 4, idempotencyTtlMs: 60_000 });
    // Workers that always have room: every new delivery's job is leased to them.
    const leases = { given: 0, forgone: 0 };
    publisher.handOffTo({ lease: () => { leases.given += 1; return { owner: 'pool', leaseMs: 30_000 }; }, adopt: () => undefined, forgo: () => { leases.forgone += 1; } });
    try {
      addEndpoint(store, 'ep_f');
      const eventPk = store.events.insert({ source: 'demo', eventId: 'order-1', type: 'order.created', rawPayload: '{}', requestId: 'req-forward-1' }, 60_000);
      // The second run repeats one that committed (the process died before its job settled).
      const first = await store.grouped(() => publisher.createDeliveries(eventPk, 'order.created', null, null));
      const again = await store.grouped(() => publisher.createDeliveries(eventPk, 'order.created', null, null));
      assert.deepEqual([first.created, again.created], [1, 0]);
      const deliveries = store.deliveries.forEvent(eventPk);
      assert.equal(deliveries.length, 1);
      const rows = store.db.prepare("SELECT id FROM jobs WHERE queue = 'deliveries'").all() as { id: number }[];
      assert.deepEqual(rows.map((row) => row.id), [deliveries[0]?.jobId], 'only the job the delivery names');
      assert.deepEqual(leases, { given: 2, forgone: 1 }, 'the discarded job\'s lease is given back');
    } finally {
      await store.close();
    }
  });
});

describe("an endpoint's failure-monitor state", () => {
  it('is read as committed after a transaction that saved it rolled back', async () => {
    const store = openStore();
    try {
      addEndpoint(store, 'ep_h');
      await store.grouped(() => store.endpointHealth.save({ ...emptyHealth('ep_h'), streak: 1, lastOk: false }));
      const failing = store.grouped(() => {
        store.endpointHealth.save({ ...emptyHealth('ep_h'), streak: 2, lastOk: false });
        assert.equal(store.endpointHealth.get('ep_h').streak, 2, 'read back inside the failing call');
        throw new Error('the attempt is not recorded after all');
      });
      await assert.rejects(failing, /not recorded/);
      assert.equal(store.endpointHealth.get('ep_h').streak, 1);
      // What get() hands out is a copy: changing it changes nothing kept.
      store.endpointHealth.get('ep_h').windowReasons.timeout = 5;
      assert.deepEqual(store.endpointHealth.get('ep_h').windowReasons, {});
    } finally {
      await store.close();
    }
  });

  it('keeps the last hour by minute across a restart, and reads a window the previous version wrote as one minute', async () => {
    const file = path.join(tempDir(), 'buckets.db');
    let store = Store.open(file, 'normal', { now: () => 0 }, () => undefined, noObserver);
    const buckets: MinuteBucket[] = [
      { start: 0, attempts: 3, failures: 2, reasons: { timeout: 2 } },
      { start: 60_000, attempts: 1, failures: 1, reasons: { http_5xx: 1 } },
    ];
    const saved = { windowBuckets: buckets, windowStart: 0, windowAttempts: 4, windowFailures: 3, windowReasons: { timeout: 2, http_5xx: 1 }, lastAttemptAt: 61_000 };
    try {
      for (const id of ['ep_m', 'ep_old', 'ep_both']) addEndpoint(store, id);
      await store.grouped(() => {
        store.endpointHealth.save({ ...emptyHealth('ep_m'), ...saved });
        store.endpointHealth.save({ ...emptyHealth('ep_both'), ...saved });
      });
      // A row as the fixed-hour version left it: totals, no minutes.
      store.db.prepare(`INSERT INTO endpoint_health (endpoint_id, window_start, window_attempts, window_failures, window_reasons, last_attempt_at)
        VALUES ('ep_old', 90500, 7, 6, '{"timeout":6}', 200500)`).run();
      // That version, still draining during a deploy, records attempts after this one saved minutes,
      // in a later minute or within the same one.
      store.db.prepare(`UPDATE endpoint_health SET window_attempts = 9, window_failures = 5, window_reasons = '{"timeout":5}', last_attempt_at = 200500
        WHERE endpoint_id = 'ep_both'`).run();
      store.endpoints.create({ id: 'ep_same', url: 'https://example.com/same', events: ['*'], description: '', ownerEmails: [], secret: 'whsec_c2VjcmV0' });
      await store.grouped(() => store.endpointHealth.save({ ...emptyHealth('ep_same'), ...saved }));
      store.db.prepare(`UPDATE endpoint_health SET window_attempts = 6, window_failures = 6, window_reasons = '{"timeout":6}', last_attempt_at = 90000
        WHERE endpoint_id = 'ep_same'`).run();
    } finally {
      await store.close();
    }
    store = Store.open(file, 'normal', { now: () => 0 }, () => undefined, noObserver);
    try {
      const kept = store.endpointHealth.get('ep_m');
      assert.deepEqual(kept.windowBuckets, buckets);
      assert.deepEqual([kept.windowAttempts, kept.windowFailures, kept.windowReasons], [4, 3, { timeout: 2, http_5xx: 1 }]);
      assert.deepEqual(store.endpointHealth.get('ep_same').windowBuckets, [{ start: 60_000, attempts: 6, failures: 6, reasons: { timeout: 6 } }], 'its totals tell it apart');
      // Its window becomes one minute at its last attempt, so it leaves late rather than early.
      for (const id of ['ep_old', 'ep_both']) {
        const health = store.endpointHealth.get(id);
        const total = id === 'ep_old' ? [7, 6, { timeout: 6 }] as const : [9, 5, { timeout: 5 }] as const;
        assert.deepEqual(health.windowBuckets, [{ start: 180_000, attempts: total[0], failures: total[1], reasons: total[2] }], id);
        assert.deepEqual([health.windowStart, health.windowAttempts, health.windowFailures, health.windowReasons], [180_000, ...total], `${id}: the totals are the minutes'`);
      }
      // The next attempt's save keeps that minute, and drops the minutes it replaced.
      await store.grouped(() => {
        const health = store.endpointHealth.get('ep_both');
        store.endpointHealth.save({ ...health, windowBuckets: [...health.windowBuckets, { start: 240_000, attempts: 1, failures: 0, reasons: {} }], windowAttempts: health.windowAttempts + 1, lastAttemptAt: 240_500 });
      });
    } finally {
      await store.close();
    }
    store = Store.open(file, 'normal', { now: () => 0 }, () => undefined, noObserver);
    try {
      assert.deepEqual(store.endpointHealth.get('ep_both').windowBuckets.map((b) => [b.start, b.attempts]), [[180_000, 9], [240_000, 1]]);
      assert.deepEqual(store.db.prepare("SELECT minute FROM endpoint_minutes WHERE endpoint_id = 'ep_both' ORDER BY minute").pluck().all(), [180_000, 240_000]);
    } finally {
      await store.close();
    }
  });

  it('is read from the table again after a second, so another process writing it is seen', async () => {
    let now = 1_000_000;
    const store = Store.open(path.join(tempDir(), 'health.db'), 'normal', { now: () => now }, () => undefined, noObserver);
    try {
      addEndpoint(store, 'ep_w');
      await store.grouped(() => store.endpointHealth.save({ ...emptyHealth('ep_w'), streak: 1, lastOk: false }));
      // An old process still draining during a deploy records an attempt of its own.
      store.db.prepare("UPDATE endpoint_health SET streak = 4 WHERE endpoint_id = 'ep_w'").run();
      assert.equal(store.endpointHealth.get('ep_w').streak, 1, 'within the second: as this process saved it');
      now += 1000;
      assert.equal(store.endpointHealth.get('ep_w').streak, 4);
    } finally {
      await store.close();
    }
  });
});
