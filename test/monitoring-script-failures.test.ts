// scripts/monitoring.sh when things fail without a stack to blame: a Prometheus that answers its
// queries with an error (a fake one on 127.0.0.1), and a host without sqlite3. Native mode, with
// every other component on a free port where nothing listens.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from './helpers/prom-tools.js';
import { describeRun, pathWithout, run, SCRIPT } from './helpers/script-harness.js';

const QUERY_ERROR = { status: 'error', error: 'query timed out' };

/**
 * Ready and answering the calls made before any query (build info, rules, configuration), and
 * refusing every query, target and Alertmanager listing with QUERY_ERROR, as a Prometheus under
 * load does (422/503 with a JSON body).
 */
function fakePrometheus(): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/-/ready') return json(200, 'Prometheus Server is Ready.');
    if (path === '/api/v1/status/buildinfo') return json(200, { status: 'success', data: { version: '2.53.2' } });
    if (path === '/api/v1/rules') return json(200, { status: 'success', data: { groups: [] } });
    if (path === '/api/v1/status/config') return json(200, { status: 'success', data: { yaml: 'global:\n  evaluation_interval: 15s\n' } });
    return json(503, QUERY_ERROR);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : 0 });
    });
  });
}

describe('scripts/monitoring.sh: failures', () => {
  let dir = '';
  let prometheus: Server | undefined;
  let env: NodeJS.ProcessEnv = {};

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hookwatch-monitoring-failures-'));
    const fake = await fakePrometheus();
    prometheus = fake.server;
    const base: NodeJS.ProcessEnv = { ...process.env };
    for (const key of Object.keys(base)) if (key.startsWith('MONITORING_')) delete base[key];
    env = {
      ...base,
      MONITORING_MODE: 'native',
      MONITORING_STATE_DIR: join(dir, 'state'),
      MONITORING_ENV_FILE: join(dir, 'env'),
      MONITORING_SECRETS_DIR: join(dir, 'secrets'),
      MONITORING_BACKUP_DIR: join(dir, 'backups'),
      MONITORING_REPORT_DIR: join(dir, 'reports'),
      MONITORING_PROMETHEUS_PORT: String(fake.port),
      MONITORING_HOOKWATCH_PORT: String(await freePort()),
      MONITORING_ALERTMANAGER_PORT: String(await freePort()),
      MONITORING_NODE_EXPORTER_PORT: String(await freePort()),
    };
  });

  after(async () => {
    await new Promise((resolve) => (prometheus ? prometheus.close(resolve) : resolve(undefined)));
    rmSync(dir, { recursive: true, force: true });
  });

  it("metrics prints Prometheus's error message", async () => {
    const result = await run(SCRIPT, ['metrics'], { env });
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stderr, /^monitoring\.sh: error: request rate: query timed out$/m, describeRun(result));
    assert.doesNotMatch(result.stderr, /unbound variable/);
  });

  it("report prints Prometheus's error message", async () => {
    const result = await run(SCRIPT, ['report', '--since', '1h'], { env });
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stderr, /monitoring\.sh: error: query failed: .*: query timed out$/m, describeRun(result));
    assert.doesNotMatch(result.stderr, /unbound variable/);
  });

  it("check prints its table with Prometheus's error message in the failed rows", async () => {
    const result = await run(SCRIPT, ['check'], { env });
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stdout, /^COMPONENT +CHECK +RESULT +DETAIL$/m, describeRun(result));
    assert.match(result.stdout, /^prometheus +targets +FAIL +query timed out$/m);
    assert.match(result.stdout, /^prometheus +configuration loaded +FAIL +query timed out$/m);
    assert.match(result.stdout, /^alertmanager +Prometheus sends to it +FAIL +query timed out$/m);
    assert.match(result.stdout, /^check: FAILED: /m);
    assert.doesNotMatch(result.stderr, /unbound variable/);
  });

  it('backup stops at once, with the install hint, when sqlite3 is missing', async () => {
    const result = await run(SCRIPT, ['backup'], { env: { ...env, PATH: pathWithout(['sqlite3'], join(dir, 'no-sqlite3')) } });
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stderr, /missing: sqlite3 \(install: apt-get install sqlite3\)/);
    assert.doesNotMatch(result.stdout, /^\[1\/7\]/m, 'no snapshot was taken');
  });
});
